/**
 * The runtime-neutral policy: decisions about a request from its plain facts, as answers or
 * plans. Executors (the node:http handler, `@dashscope-token/fetch`) carry them out; an app
 * never needs these, an executor author does.
 */
export type { AccessPolicy, Admitted, NoReplay, Refused } from './admission.js';
export {
  admit,
  appToken,
  boundAdmission,
  obtainToken,
  resolveApiKey,
  tokenAfterUnauthorized,
} from './admission.js';
export type {
  Answer,
  ErrorAnswer,
  ErrorDialect,
  FailureSite,
  TransportFailure,
} from './answers.js';
export {
  badTargetAnswer,
  CLIENT_GONE,
  errorAnswer,
  errorBody,
  failureAnswer,
  INTERNAL_ERROR,
  injectedKeyRefusedAnswer,
  isRetryable,
  NOT_FOUND,
  newRequestId,
  noStoreAnswer,
  payloadTooLargeAnswer,
  transportFailureAnswer,
  unauthorizedUpstreamAnswer,
  utf8Length,
} from './answers.js';
export type {
  BudgetCounter,
  BudgetKind,
  BudgetStats,
  BudgetStore,
  BudgetsOptions,
  BudgetsSettings,
  BudgetWindow,
  ModelBudgetOptions,
} from './budgets.js';
export {
  Budgets,
  budgetWindow,
  MAX_BUDGET_PERIOD_SECONDS,
  MemoryBudgetCounter,
} from './budgets.js';
export type { ClientIdentity } from './client-identity.js';
export { clientIdentity } from './client-identity.js';
export type { ConcurrencySlot, ConcurrencyStats, Entered } from './concurrency.js';
export { DEFAULT_CONCURRENT_REQUESTS, enterProxy } from './concurrency.js';
export type { HandlerConfig, HandlerTokenProviders } from './config.js';
export { createHandlerProviders, resolveHandlerConfig } from './config.js';
export { CorsPolicy } from './cors.js';
export type { UpstreamHeaders } from './headers.js';
export { filterResponseHeaders, HOP_BY_HOP, mergeVary, readClientHeaders } from './headers.js';
export type {
  ClientFacts,
  LimitedAccess,
  LimitedRoute,
  LimitRule,
  LimitStats,
  LimitsOptions,
  RateLimitDecision,
  RateLimiter,
  RateLimitStore,
} from './limits.js';
export {
  admitWithinLimits,
  DEFAULT_PROXY_LIMIT,
  DEFAULT_TOKEN_ROUTE_LIMIT,
  DEFAULT_WEBSOCKET_LIMIT,
  Limits,
  MemoryRateLimiter,
  withinBudgets,
  withinModelBudgets,
} from './limits.js';
export type { DashScopeLogger, RequestLogFacts, RequestLogFields } from './logging.js';
export { logInternalError, logRefreshError, logRequest, logStoreError } from './logging.js';
export type { MeterConfig, MeterFacts, RelayMeter } from './meter.js';
export { AnswerMeter, meterStreamsReads } from './meter.js';
export type {
  ApiKeyOption,
  AuthorizeOption,
  AuthorizeResult,
  CorsOptions,
  HandlerCacheOptions,
  HandlerGetTokenOptions,
  HandlerProviders,
  Identity,
  ProxyOptions,
  SharedHandlerOptions,
  TokenRouteOptions,
} from './options.js';
export { compileOrigins, isSameOriginAsHost } from './origin.js';
export type {
  EasRefused,
  PaiEasConfig,
  PaiEasGrant,
  PaiEasOperations,
  PaiEasRoute,
  PaiEasRoutesOptions,
  PaiEasServiceEndpoint,
  PaiEasWorkbenchTarget,
  WorkbenchAuthorizer,
  WorkbenchLogin,
} from './pai-eas.js';
export {
  admitServiceCall,
  authorizeOnly,
  authorizeWorkbench,
  checkWorkbenchFraming,
  DEFAULT_WORKBENCH_BODY_BYTES,
  DEFAULT_WORKBENCH_BODY_TIMEOUT_MS,
  fetchWorkbenchUrl,
  paiEasProxyConfig,
  resolvePaiEasConfig,
  serviceFailureAnswer,
  serviceGrant,
  WORKBENCH_BODY_TIMEOUT,
  withServiceToken,
  workbenchAnswer,
  workbenchTarget,
} from './pai-eas.js';
export type { PoolQueueSettings, PoolQueueStats, PoolTurn } from './pool-queue.js';
export { DEFAULT_QUEUE_LENGTH, DEFAULT_QUEUE_TIMEOUT_MS } from './pool-queue.js';
export type { BodyHandling, ProxyFacts, ProxyMemo, ProxyPlan, ReadBody } from './proxy.js';
export {
  BODY_READ_TIMEOUT,
  bearer,
  bodyRequestsStream,
  checkProxyBody,
  checkProxyMethod,
  completeUpstreamHeaders,
  parseJson,
  planProxy,
  proxyTokenCall,
  withFreshKey,
} from './proxy.js';
export { REMINT_INTERVAL_MS, RemintLimiter } from './remint.js';
export type { RequestFacts, RequestHeaders, RequestPlan } from './request.js';
export { planRequest, TOKEN_ROUTE_ALLOW, tokenAnswer } from './request.js';
export { matchRoute, normalisePrefix } from './routes.js';
export type {
  DiagnosticsChannel,
  DiagnosticsChannels,
  DiagnosticsRequest,
  LimitHitMessage,
  MintMessage,
  RefreshErrorMessage,
  RequestEndMessage,
  RequestOutcome,
  RequestRouteKind,
  RequestStartMessage,
  UsageMessage,
} from './telemetry.js';
export {
  CHANNELS,
  originHost,
  requestRouteKind,
  runtimeTelemetry,
  Telemetry,
} from './telemetry.js';
export type { UsageEvent, UsageHook, UsageListener, UsageRoute } from './usage.js';
export { Metering, usageIdentity } from './usage.js';
export type { AnswerUsage, UsageCounts, UsageReader } from './usage-reader.js';
export {
  answerUsage,
  concatBytes,
  MAX_JSON_USAGE_BYTES,
  MAX_SSE_LINE_BYTES,
  usageCounts,
  usageReader,
} from './usage-reader.js';
export {
  MAX_HELD_EVENT_BYTES,
  streamUsageCandidate,
  UsageChunkStrip,
  withStreamUsage,
} from './usage-streams.js';
export type { UpgradeFacts, UpgradePlan } from './websocket.js';
export { planUpgrade, upstreamHandshakeHeaders, withoutCredentialParams } from './websocket.js';
export type { WebSocketConfig, WebSocketSettings } from './websocket-config.js';
export type { WebSocketApi, WebSocketUsageSession } from './websocket-usage.js';
export { MAX_USAGE_MESSAGE_BYTES, WebSocketUsageMeter } from './websocket-usage.js';
