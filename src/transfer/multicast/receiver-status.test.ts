import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { missingChunkCount, planRepair, type ReceiverStatus } from './receiver-status.ts';

const st = (missing: Array<[number, number]>, partial: Array<[number, number[]]> = []): ReceiverStatus => ({ receiverId: 'r', missing, partial, received: 0, lossRate: 0 });

describe('repair plan', () => {
  it('sends the union of whole chunks and of single fragments across receivers', () => {
    const plan = planRepair([st([[0, 2]], [[5, [1, 3]]]), st([[7, 8]], [[5, [3, 4]], [1, [0]]])], 10, () => 46);
    assert.deepEqual([...plan.whole].sort(), [0, 1, 7]);
    assert.deepEqual([...plan.fragments.keys()], [5]);
    assert.deepEqual([...plan.fragments.get(5)!].sort(), [1, 3, 4]);
    assert.deepEqual([...plan.need], [[5, 2]], 'no receiver needs more than two fragments of chunk 5');
  });
  it('turns a chunk whose every fragment is asked for into a whole chunk', () => {
    const plan = planRepair([st([], [[2, [0, 1]]]), st([], [[2, [2]]])], 4, () => 3);
    assert.deepEqual([...plan.whole], [2]);
    assert.equal(plan.fragments.size, 0);
    assert.equal(plan.need.size, 0);
  });
  it('ignores chunks and fragments out of range', () => {
    const plan = planRepair([st([[8, 100]], [[50, [0]], [1, [99, -1, 0.5]]])], 10, () => 4);
    assert.deepEqual([...plan.whole].sort(), [8, 9]);
    assert.equal(plan.fragments.size, 0);
  });
  it('counts incomplete chunks of a status', () => {
    assert.equal(missingChunkCount(st([[0, 3], [5, 6]], [[4, [1]]])), 5);
  });
});
