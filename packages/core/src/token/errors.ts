/** The errors the token provider itself raises (not answers of Model Studio). */
import { DashScopeError } from '../errors.js';

/** `InvalidParameter` (400) for an option refused before any request. */
export function invalidOption(message: string): DashScopeError {
  return new DashScopeError({ code: 'InvalidParameter', status: 400, retryable: false, message });
}

/** `ProviderClosed` (503): a call after `close()`. */
export function closedError(): DashScopeError {
  return new DashScopeError({
    code: 'ProviderClosed',
    status: 503,
    retryable: false,
    message: 'The token provider is closed (close() was called); create a new one.',
  });
}

/** `MissingApiKey` (500): neither the call, the provider nor the environment has a key. */
export function missingKeyError(): DashScopeError {
  return new DashScopeError({
    code: 'MissingApiKey',
    status: 500,
    retryable: false,
    message:
      'No Model Studio API key: pass `apiKey` to createTokenProvider or getToken, or set the DASHSCOPE_API_KEY environment variable.',
  });
}

/** `Aborted` (499): the caller's signal fired while it waited for a mint. */
export function abortedWaitError(): DashScopeError {
  return new DashScopeError({
    code: 'Aborted',
    status: 499,
    retryable: false,
    message: 'Aborted by the caller while waiting for a temporary key.',
  });
}
