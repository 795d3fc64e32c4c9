/** Which emulated PAI-EAS endpoint serves a path, and how its faults are answered. */
import type { Exchange } from '../exchange.js';
import { answerWithFault } from '../fault-answer.js';
import type { RouteMatch } from '../router.js';
import type { EmulatorFault, RecordedRoute } from '../types.js';
import { sendEasError } from './answers.js';
import { openApiRoute, PREDICT_PREFIX, WORKBENCH_LOGIN_PATH } from './openapi.js';
import { predictRoute } from './predict.js';
import { workbenchPageRoute } from './workbench-page.js';

/** Faults on the OpenAPI in the gateway's shape; the rest as the emulator answers them. */
function answerOpenApiFault(ex: Exchange, fault: EmulatorFault, route: RecordedRoute): void {
  switch (fault.type) {
    case 'throttle':
      sendEasError(
        ex,
        {
          status: 400,
          code: 'Throttling.User',
          message: 'Request was denied due to user flow control.',
        },
        fault.retryAfterSeconds === undefined
          ? {}
          : { 'x-acs-retry-after': String(Math.round(fault.retryAfterSeconds * 1000)) },
      );
      return;
    case 'system-error':
      sendEasError(ex, {
        status: 500,
        code: 'InternalError',
        message: 'The request processing has failed due to some unknown error.',
      });
      return;
    case 'invalid-api-key':
      sendEasError(ex, {
        status: 404,
        code: 'InvalidAccessKeyId.NotFound',
        message: 'Specified access key is not found.',
      });
      return;
    default:
      answerWithFault(ex, fault, route);
  }
}

const OPENAPI: RouteMatch = {
  route: 'pai-eas',
  methods: ['GET'],
  streams: false,
  handle: openApiRoute,
  answerFault: answerOpenApiFault,
};

const WORKBENCH: RouteMatch = {
  route: 'pai-eas-workbench',
  methods: ['GET'],
  streams: false,
  handle: workbenchPageRoute,
};

const PREDICT: RouteMatch = {
  route: 'pai-eas-service',
  methods: ['GET', 'POST'],
  streams: true,
  handle: predictRoute,
};

/** The PAI-EAS route serving `pathname`, if any. */
export function matchPaiEasRoute(pathname: string): RouteMatch | undefined {
  if (pathname.startsWith('/api/v2/')) return OPENAPI;
  if (pathname === WORKBENCH_LOGIN_PATH) return WORKBENCH;
  if (pathname.startsWith(PREDICT_PREFIX)) return PREDICT;
  return undefined;
}
