import type { ServerResponse } from 'node:http';

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

/**
 * A signal that aborts when the client's connection closes before `res` was fully sent (the
 * client left); for waits that should then be abandoned.
 */
export function clientGoneSignal(res: ServerResponse): AbortSignal {
  const controller = new AbortController();
  if (res.destroyed || res.socket?.destroyed === true) controller.abort();
  else {
    res.once('close', () => {
      if (!res.writableFinished) controller.abort();
    });
  }
  return controller.signal;
}
