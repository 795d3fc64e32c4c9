import type { Exchange } from './exchange.js';
import { matchPaiEasRoute } from './pai-eas/routes.js';
import { chatCompletionsRoute, modelsRoute } from './routes/compatible.js';
import { CONTROL_ROUTES } from './routes/control.js';
import { compatibleEmbeddingsRoute, nativeEmbeddingsRoute } from './routes/embeddings.js';
import { generationRoute } from './routes/generation.js';
import {
  FILES_PREFIX,
  fileRoute,
  imageSynthesisRoute,
  TASKS_PREFIX,
  taskRoute,
} from './routes/images.js';
import { tokensRoute } from './routes/tokens.js';
import type { EmulatorFault, RecordedRoute } from './types.js';

/** A known path: what it is, which methods it answers, and its handler. */
export interface RouteMatch {
  route: RecordedRoute;
  methods: readonly string[];
  /** Whether the route can stream (stream faults are handed to its handler). */
  streams: boolean;
  handle(ex: Exchange): void | Promise<void>;
  /** Answers a fault in the route's own shape. @default answerWithFault */
  answerFault?(ex: Exchange, fault: EmulatorFault, route: RecordedRoute): void;
}

const INFERENCE: Record<string, RouteMatch> = {
  '/api/v1/tokens': { route: 'tokens', methods: ['POST'], streams: false, handle: tokensRoute },
  '/api/v1/services/aigc/text-generation/generation': {
    route: 'generation',
    methods: ['POST'],
    streams: true,
    handle: generationRoute,
  },
  '/api/v1/services/aigc/multimodal-generation/generation': {
    route: 'generation',
    methods: ['POST'],
    streams: true,
    handle: generationRoute,
  },
  '/api/v1/services/embeddings/text-embedding/text-embedding': {
    route: 'embeddings',
    methods: ['POST'],
    streams: false,
    handle: nativeEmbeddingsRoute,
  },
  '/compatible-mode/v1/chat/completions': {
    route: 'chat',
    methods: ['POST'],
    streams: true,
    handle: chatCompletionsRoute,
  },
  '/compatible-mode/v1/embeddings': {
    route: 'embeddings',
    methods: ['POST'],
    streams: false,
    handle: compatibleEmbeddingsRoute,
  },
  '/api/v1/services/aigc/text2image/image-synthesis': {
    route: 'images',
    methods: ['POST'],
    streams: false,
    handle: imageSynthesisRoute,
  },
  '/compatible-mode/v1/models': {
    route: 'models',
    methods: ['GET'],
    streams: false,
    handle: modelsRoute,
  },
};

/** The route serving `pathname` (exact match, no trailing slash), if any. */
export function matchRoute(pathname: string, controlRoutes: boolean): RouteMatch | undefined {
  if (Object.hasOwn(INFERENCE, pathname)) return INFERENCE[pathname];
  if (pathname.startsWith(TASKS_PREFIX) && pathname.length > TASKS_PREFIX.length)
    return { route: 'tasks', methods: ['GET'], streams: false, handle: taskRoute };
  if (pathname.startsWith(FILES_PREFIX))
    return { route: 'files', methods: ['GET'], streams: false, handle: fileRoute };
  if (controlRoutes && Object.hasOwn(CONTROL_ROUTES, pathname)) {
    const byMethod = CONTROL_ROUTES[pathname] as Record<string, (ex: Exchange) => void>;
    return {
      route: 'control',
      methods: Object.keys(byMethod),
      streams: false,
      handle: (ex) => byMethod[ex.req.method ?? '']?.(ex),
    };
  }
  return matchPaiEasRoute(pathname);
}
