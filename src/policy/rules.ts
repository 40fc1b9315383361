/**
 * Tag rules: "objects tagged KEY=VALUE move to STORAGE_CLASS after DAYS days". Offsite tags what
 * it uploads; the bucket's lifecycle configuration (see lifecycle.ts) does the moving, on the
 * server, so no client has to be running when the day comes.
 */

/** Storage classes an S3 lifecycle transition can move objects to (AWS names). */
export const TRANSITION_STORAGE_CLASSES = ['STANDARD_IA', 'ONEZONE_IA', 'INTELLIGENT_TIERING', 'GLACIER_IR', 'GLACIER', 'DEEP_ARCHIVE'] as const;

/** A transition target. Other S3-compatible servers may name their own classes, so any is accepted. */
export type TransitionStorageClass = (typeof TRANSITION_STORAGE_CLASSES)[number] | (string & {});

export interface TagRule {
  /** Objects carrying exactly this tag. */
  tag: { key: string; value: string };
  storageClass: TransitionStorageClass;
  /** Days after the object's creation; 0 = at the next lifecycle run (within about a day on AWS). */
  days: number;
  /** The lifecycle rule ID; default derived from the rule (offsite-KEY-VALUE-CLASS-DAYSd). */
  id?: string;
}

/**
 * The defaults, used when the configuration names no rules (its [lifecycle] rules replace them
 * all):
 * - archive=fast       -> GLACIER_IR after 0 days: millisecond reads, cheaper storage, pricier reads;
 * - archive=normal     -> GLACIER after 0 days: reads need a restore (minutes to hours);
 * - archive=delayed    -> GLACIER after 30 days: recent archives stay readable for a month;
 * - backup=deep-archive -> DEEP_ARCHIVE after 0 days: cheapest, restores take up to 48 hours.
 */
export const DEFAULT_TAG_RULES: readonly TagRule[] = Object.freeze([
  { tag: { key: 'archive', value: 'fast' }, storageClass: 'GLACIER_IR', days: 0 },
  { tag: { key: 'archive', value: 'normal' }, storageClass: 'GLACIER', days: 0 },
  { tag: { key: 'archive', value: 'delayed' }, storageClass: 'GLACIER', days: 30 },
  { tag: { key: 'backup', value: 'deep-archive' }, storageClass: 'DEEP_ARCHIVE', days: 0 },
]);

/** A rule set or request that cannot be turned into a valid S3 policy. */
export class PolicyError extends Error {
  override name = 'PolicyError';
  readonly code = 'InvalidPolicy';
}

/** The ID of the rule that deletes abandoned multipart uploads (see lifecycleConfiguration). */
export const ABORT_MULTIPART_RULE_ID = 'offsite-abort-incomplete-multipart-uploads';

/** AWS refuses transitions to the infrequent-access classes before an object is 30 days old. */
const MIN_DAYS: Readonly<Record<string, number>> = { STANDARD_IA: 30, ONEZONE_IA: 30 };
/** S3 allows at most 1000 rules per bucket; one is Offsite's multipart clean-up rule. */
const MAX_RULES = 999;

export function ruleId(rule: TagRule): string {
  return rule.id ?? `offsite-${rule.tag.key}-${rule.tag.value}-${rule.storageClass}-${rule.days}d`.replace(/[^A-Za-z0-9._=-]/g, '_').slice(0, 255);
}

/** Throws PolicyError, naming the rule, for what S3 would refuse with a less helpful message. */
export function validateTagRules(rules: readonly TagRule[]): void {
  if (rules.length > MAX_RULES) throw new PolicyError(`lifecycle: ${rules.length} rules; S3 allows at most ${MAX_RULES} besides Offsite's own`);
  const ids = new Set<string>();
  for (const rule of rules) {
    const name = `rule ${rule.tag.key}=${rule.tag.value} -> ${rule.storageClass}`;
    if (!rule.tag.key || rule.tag.key.length > 128) throw new PolicyError(`lifecycle: ${name}: the tag key must be 1 to 128 characters`);
    if (rule.tag.value.length > 256) throw new PolicyError(`lifecycle: ${name}: the tag value must be at most 256 characters`);
    if (!Number.isInteger(rule.days) || rule.days < 0) throw new PolicyError(`lifecycle: ${name}: days must be a whole number >= 0, got ${rule.days}`);
    if (rule.storageClass === 'STANDARD' || !/^[A-Z][A-Z0-9_]*$/.test(rule.storageClass)) {
      throw new PolicyError(`lifecycle: ${name}: not a storage class a transition can go to; use one of ${TRANSITION_STORAGE_CLASSES.join(', ')}`);
    }
    const min = MIN_DAYS[rule.storageClass];
    if (min !== undefined && rule.days < min) throw new PolicyError(`lifecycle: ${name}: S3 moves objects to ${rule.storageClass} only after ${min} days or more, got ${rule.days}`);
    const id = ruleId(rule);
    if (id.length > 255) throw new PolicyError(`lifecycle: ${name}: the rule ID is longer than S3's 255 characters`);
    if (id === ABORT_MULTIPART_RULE_ID) throw new PolicyError(`lifecycle: ${name}: the ID "${id}" is Offsite's own multipart clean-up rule; choose another`);
    if (ids.has(id)) throw new PolicyError(`lifecycle: two rules have the ID "${id}"; give one an explicit id`);
    ids.add(id);
  }
}
