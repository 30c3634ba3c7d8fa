/**
 * The reflector's view of one client connection, independent of the transport: the `ws` server
 * adapts its WebSockets to it (ws-socket.ts), and in-process transports (tests) implement it
 * directly. Everything the connection layer does with a socket goes through this interface.
 */
export interface PeerSocket {
  /** Whether frames can still be sent (false once either side started closing). */
  readonly isOpen: boolean;
  /** Bytes accepted by {@link send} that have not reached the peer yet. */
  readonly bufferedAmount: number;
  /**
   * Queues one binary frame. The bytes may be sent later and must not be changed meanwhile by
   * the caller (the reflector never reuses a frame it sent). May throw if the socket is dying.
   */
  send(frame: Uint8Array): void;
  /**
   * Optional: queues `frames` in order, as {@link send} of each would, in as few writes as it can.
   * A broadcast passes the same array to every member's socket in a row, so the framing of the
   * whole batch may be done once and shared.
   */
  sendAll?(frames: readonly Uint8Array[]): void;
  /** Starts the closing handshake with `code` and `reason`. May throw (the caller terminates then). */
  close(code: number, reason: string): void;
  /** Destroys the connection at once; the close event follows with 1006. */
  terminate(): void;
  /** Sends a ping; the peer's pong is reported to {@link PeerSocketListener.pong}. */
  ping(): void;
  /**
   * Registers the connection's listener (once, right after the socket was accepted). Events
   * arrive asynchronously, never from inside a call on this socket.
   */
  listen(listener: PeerSocketListener): void;
  /**
   * Optional: holds back writes (of one turn of the event loop) so they leave in one write, and
   * releases them. Transports without a write buffer of their own leave both out.
   */
  cork?(): void;
  uncork?(): void;
  /** Optional: stops reading from the peer (a flooder's further frames are not even parsed). */
  pause?(): void;
  /** Optional: reads from the peer again after {@link pause} (backpressure of a proxied connection). */
  resume?(): void;
  /**
   * Optional: reports raw bytes received (framing included) as they arrive, before frames are
   * assembled, until the returned function is called. The pre-join guard uses it to cut off a
   * socket before a huge first frame is buffered.
   */
  watchIncoming?(onBytes: (bytes: number) => void): () => void;
}

/** What a {@link PeerSocket} reports. Called from the transport's events; the core never throws out of them. */
export interface PeerSocketListener {
  /** One whole message: `data` views the received bytes (valid only during the call); `isBinary` false for text frames. */
  message(data: Uint8Array, isBinary: boolean): void;
  /** A pong answered a ping. */
  pong(): void;
  /** A socket or protocol fault; `close` follows. */
  error(error: Error): void;
  /** The socket closed with `code` (1006 when it was cut off without a closing handshake). Reported once. */
  close(code: number): void;
}

/** Who a socket belongs to, as the transport determined it. */
export interface PeerInfo {
  /** The client's address, for per-address caps and penalties. */
  readonly address: string;
  /** Remote address and port (or any label), for logs. */
  readonly remote: string;
}
