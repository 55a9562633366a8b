/**
 * Wire types of the multicast data plane: one UDP datagram carries one fragment of a sealed chunk (DATA), one
 * erasure-code parity fragment of a sealed chunk (PARITY) or the sender's end-of-pass marker (PASS_END).
 * Layout (big-endian, 24-byte header):
 *
 *   0  u16 magic 0x5348 ("SH")      12 u32 chunk index (PASS_END: pass number)
 *   2  u8  version (1)              16 u16 epoch (nonce generation; PASS_END: 0)
 *   3  u8  kind                     18 u16 fragment index
 *   4  8 bytes transfer id          20 u16 fragment count
 *                                   22 u16 payload length, then the payload
 *
 * A DATA payload is bytes [index·size, …) of the sealed chunk (ciphertext ‖ tag) where
 * size = ceil(sealedLength / count): every fragment but the last has exactly that length, so a receiver
 * checks each fragment's length without trusting the sender's MTU. A PARITY datagram has the DATA header with
 * the parity index in the fragment field and the chunk's data fragment count in the count field; its payload is
 * always `size` bytes (src/transfer/multicast/erasure.ts: any e parity fragments restore any e missing data
 * fragments). A PASS_END payload is a u32: the number of DATA and PARITY datagrams the pass sent (receivers
 * derive their loss rate from it).
 */

/** Datagram kinds. */
export const DatagramKind = {
  DATA: 1,
  PASS_END: 2,
  PARITY: 3,
} as const;
export type DatagramKind = (typeof DatagramKind)[keyof typeof DatagramKind];

/** First two bytes of every datagram ("SH"). */
export const DATAGRAM_MAGIC = 0x5348;
/** Current wire version. */
export const DATAGRAM_VERSION = 1;
/** Header size, bytes. */
export const DATAGRAM_HEADER_BYTES = 24;
/** Transfer id size on the wire, bytes. */
export const TRANSFER_ID_BYTES = 8;
/** Largest UDP payload over IPv4, bytes. */
export const MAX_DATAGRAM_BYTES = 65_507;
/** Most fragments one chunk may be cut into. */
export const MAX_FRAGMENTS = 4096;
/** Highest parity index (the code is over GF(2^8): data and parity fragments of a chunk number at most 256). */
export const MAX_PARITY_INDEX = 254;
/** PASS_END payload size, bytes. */
export const PASS_END_PAYLOAD_BYTES = 4;
/** IPv4 + UDP header bytes, subtracted from the MTU to get the datagram budget. */
export const IP_UDP_OVERHEAD_BYTES = 28;
/** Ethernet header bytes a shaper counts on top of the IP packet (used for pacing). */
export const ETHERNET_OVERHEAD_BYTES = 14;

/** One fragment (DATA) or parity fragment (PARITY: `fragment` is the parity index, `fragments` the chunk's data
 * fragment count) of a sealed chunk. `payload` is a view into the decoded buffer (no copy). */
export interface DataDatagram {
  kind: typeof DatagramKind.DATA | typeof DatagramKind.PARITY;
  transferId: Uint8Array;
  chunk: number;
  epoch: number;
  fragment: number;
  fragments: number;
  payload: Uint8Array;
}

/** The sender finished pass `pass` after sending `sent` DATA datagrams. */
export interface PassEndDatagram {
  kind: typeof DatagramKind.PASS_END;
  transferId: Uint8Array;
  pass: number;
  sent: number;
}

export type Datagram = DataDatagram | PassEndDatagram;
