/**
 * Large, long-lived buffers on transparent huge pages (build/shoal_mem.node, native/shoal_mem.c, Linux): one page
 * fault per 2 MiB instead of 512. The multicast sender keeps up to 128 MiB of sealed chunks for repairs; in fresh
 * memory their first writes cost 0.13-0.33 s of CPU per 100 MiB on the bed's virtual machine, against 0.04 s
 * into memory already faulted in (and half of that on huge pages). Elsewhere, or with SHOAL_HUGE_PAGES=off, an
 * ordinary Buffer.
 */
import { loadNativeModule } from '../../native-module.ts';

interface NativeMem {
  hugeBuffer(bytes: number): Buffer;
}
const loadNative = (): NativeMem | null => loadNativeModule<NativeMem>('shoal_mem', process.platform !== 'linux' || process.env.SHOAL_HUGE_PAGES === 'off');

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
