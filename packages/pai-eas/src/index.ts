/**
 * `@dashscope-token/pai-eas`: Alibaba Cloud PAI-EAS for dashscope-token. One-time Workbench
 * login URLs (`CreateServiceInstanceToken`) and service endpoints and tokens
 * (`DescribeService`), signed with Alibaba Cloud V3 (`ACS3-HMAC-SHA256`) on WebCrypto, so the
 * AccessKey stays on the server.
 *
 * @packageDocumentation
 */
export type { CallOptions, PaiEasClientOptions } from './client-options.js';
export { DEFAULT_TIMEOUT_MS, defaultEndpoint } from './client-options.js';
export type {
  AlibabaCloudCredentials,
  CredentialProvider,
  CredentialsOption,
} from './credentials.js';
export { CREDENTIAL_ENV, resolveCredentials } from './credentials.js';
export type { DescribeServiceOptions, ServiceDescription } from './describe-service.js';
export { describeService } from './describe-service.js';
export type { EasErrorBody } from './eas-errors.js';
export type {
  CreateServiceInstanceTokenOptions,
  ServiceInstanceToken,
} from './instance-token.js';
export { createServiceInstanceToken } from './instance-token.js';
export type { EasNameKind, WorkbenchTarget } from './names.js';
export {
  checkEasName,
  EAS_NAME_PATTERNS,
  isValidEasName,
  parseWorkbenchTarget,
} from './names.js';
export { EAS_API_VERSION } from './openapi-call.js';
export {
  canonicalQuery,
  canonicalUri,
  encodePathSegment,
  percentEncode,
} from './percent-encode.js';
export type { PaiEasOptions } from './routes.js';
export { createPaiEas } from './routes.js';
export type {
  ServiceCache,
  ServiceCacheOptions,
  ServiceEndpoint,
  ServiceLookupOptions,
} from './service-cache.js';
export { createServiceCache } from './service-cache.js';
export type { SignableRequest, SignedRequest, SignOptions } from './sign.js';
export {
  canonicalHeaders,
  canonicalRequest,
  formatAcsDate,
  SIGNATURE_ALGORITHM,
  signRequest,
} from './sign.js';
