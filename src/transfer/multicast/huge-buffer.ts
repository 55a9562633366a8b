/**
 * Large, long-lived buffers on transparent huge pages (build/shoal_mem.node, native/shoal_mem.c, Linux): one page
 * fault per 2 MiB instead of 512. The multicast sender keeps up to 128 MiB of sealed chunks for repairs, and a
 * receiver up to 32 MiB of chunks being reassembled and a few dozen MiB of pieces; in fresh memory their first
 * writes cost 0.13-0.33 s of CPU per 100 MiB on the bed's virtual machine, against 0.04 s into memory already
 * faulted in (and half of that on huge pages). Elsewhere, or with SHOAL_HUGE_PAGES=off, an ordinary Buffer.
 */
import { loadNativeModule } from '../../native-module.ts';

interface NativeMem {
  hugeBuffer(bytes: number): Buffer;
}
const loadNative = (): NativeMem | null => (process.env.SHOAL_HUGE_PAGES === 'off' ? null : loadNativeModule<NativeMem>('shoal_mem', process.platform !== 'linux'));

/** A buffer of `bytes` (uninitialised or zero), on huge pages where the kernel gives them. */
export function hugeBuffer(bytes: number): Buffer {
  const mod = loadNative();
  if (!mod || bytes < 2 * 1024 * 1024) return Buffer.allocUnsafeSlow(bytes);
  try {
    return mod.hugeBuffer(bytes).subarray(0, bytes);
  } catch {
    return Buffer.allocUnsafeSlow(bytes);
  }
}

/** Whether build/shoal_mem.node is in use. */
export function hugeBuffersLoaded(): boolean {
  return loadNative() !== null;
}

/** Buffers of one size cut as needed from one slab on huge pages (reserved, not touched, until a slot is first
 * taken); slots given back are taken again first. */
export interface SlabPool {
  /** A free slot, or null when every slot is out. */
  take(): Buffer | null;
  /** Takes back a slot (any view into it); false, and nothing done, for a buffer that is not one of this slab's
   * slots. A slot given back twice is put in the pool once. */
  give(b: Uint8Array): boolean;
}

/** A pool of `slots` buffers of `slotBytes` each (none at all when `slots` is 0). */
export function createSlabPool(slotBytes: number, slots: number): SlabPool {
  const slab = slots > 0 && slotBytes > 0 ? hugeBuffer(slots * slotBytes) : null;
  const free: Buffer[] = [];
  const out = new Uint8Array(slab ? slots : 0);
  let carved = 0;
  const slot = (i: number): Buffer => slab!.subarray(i * slotBytes, (i + 1) * slotBytes);
  return {
    take() {
      const b = free.pop() ?? (slab && carved < slots ? slot(carved++) : null);
      if (b) out[(b.byteOffset - slab!.byteOffset) / slotBytes] = 1;
      return b;
    },
    give(b) {
      if (!slab || b.buffer !== slab.buffer) return false;
      const i = Math.floor((b.byteOffset - slab.byteOffset) / slotBytes);
      if (i < 0 || i >= slots) return false;
      if (out[i]) {
        out[i] = 0;
        free.push(slot(i));
      }
      return true;
    },
  };
}
