/** Limits shared by the coordinator, the agent and the clients. Sizes in bytes, times in ms. */
export const Limits = {
  /** Largest JSON request body. */
  jsonBodyBytes: 1024 * 1024,
  /** Largest single upload (a shared file). */
  uploadBytes: 64 * 1024 * 1024 * 1024,
  /** Largest WebSocket message. */
  wsMessageBytes: 1024 * 1024,
  /** Default piece size of a manifest. */
  pieceBytes: 4 * 1024 * 1024,
  /** Most pieces a manifest may list (64 GiB at 4 MiB). */
  maxPieces: 16384,
  /** Longest file name, in UTF-8 bytes. */
  fileNameBytes: 255,
  /** Usernames and group names. */
  nameMinChars: 2,
  nameMaxChars: 64,
  passwordMinChars: 8,
  passwordMaxChars: 1024,
  /** Session lifetime. */
  sessionTtlMs: 7 * 24 * 3600 * 1000,
  /** Ticket lifetime for piece servers. */
  ticketTtlMs: 10 * 60 * 1000,
  /** Agent heartbeat interval; an agent silent for 3 intervals is gone. */
  heartbeatMs: 5000,
} as const;
