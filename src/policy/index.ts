// The policy layer's public face: tag rules, the bucket lifecycle configuration they become, and
// the least-privilege IAM policy for Offsite's credentials.
export {
  DEFAULT_TAG_RULES,
  TRANSITION_STORAGE_CLASSES,
  ABORT_MULTIPART_RULE_ID,
  PolicyError,
  ruleId,
  validateTagRules,
  type TagRule,
  type TransitionStorageClass,
} from './rules.js';
export {
  ABORT_INCOMPLETE_MULTIPART_DAYS,
  applyLifecycle,
  diffLifecycleRules,
  lifecycleConfiguration,
  type ApplyLifecycleOptions,
  type ApplyLifecycleResult,
  type LifecycleDiff,
  type LifecycleOptions,
} from './lifecycle.js';
export { iamPolicy, POLICY_FEATURES, type IamPolicyDocument, type IamPolicyOptions, type IamStatement, type PolicyFeature } from './iam.js';
