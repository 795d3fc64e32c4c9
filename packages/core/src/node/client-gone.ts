/** The client closed its connection before the answer was complete; nothing more can be sent. */
export class ClientGoneError extends Error {
  override readonly name = 'ClientGoneError';
  readonly code = 'ClientGone';
  constructor() {
    super('The client closed the connection.');
  }
}

/** Whether `error` is a {@link ClientGoneError}. */
export function isClientGone(error: unknown): error is ClientGoneError {
  return error instanceof ClientGoneError;
}
