// offsite policy lifecycle | iam: the bucket lifecycle rules and the IAM policy for what the
// archive configuration sets up.
import type { Command } from 'commander';
import type { ConfigOverrides } from '../../backup/archive/index.js';
import { applyLifecycle, DEFAULT_TAG_RULES, iamPolicy, lifecycleConfiguration, POLICY_FEATURES, type PolicyFeature, type TagRule } from '../../policy/index.js';
import { openStorage, parseStorageUrl } from '../../storage/index.js';
import { DEFAULT_CONFIG_FILE } from './archive.js';
import { note, printJson, printLine, UsageError, type GlobalOptions } from '../output.js';

interface PolicyOptions extends GlobalOptions {
  config?: string;
  url?: string;
}

// The config loader (zod, TOML) is loaded when a policy command runs, not at start-up.
async function destination(g: PolicyOptions) {
  const { loadArchiveConfig } = await import('../../backup/archive/index.js');
  const overrides: ConfigOverrides = g.url ? { 'destination.url': g.url } : {};
  return loadArchiveConfig(g.config, overrides, process.env, { needsSessions: false });
}

export function registerPolicyCommands(program: Command): void {
  const policy = program
    .command('policy')
    .description('bucket lifecycle rules and the least-privilege IAM policy for the archive configuration')
    .option('--config <file>', `archive config file (default: $OFFSITE_ARCHIVE_CONFIG, else ./${DEFAULT_CONFIG_FILE})`)
    .option('--url <url>', 'destination storage URL (overrides destination.url)');

  policy
    .command('lifecycle')
    .description('print the lifecycle configuration for the tag rules (the defaults unless [lifecycle] rules are set); --apply puts it on the bucket')
    .option('--apply', 'replace the bucket\'s lifecycle configuration with it (prints what changes)')
    .action(async (o: { apply?: boolean }, cmd: Command) => {
      const g = cmd.optsWithGlobals<PolicyOptions>();
      const config = await destination(g);
      const rules = (config.lifecycleRules ?? DEFAULT_TAG_RULES) as readonly TagRule[];
      const loc = parseStorageUrl(config.destinationUrl);
      const prefix = loc.kind === 's3' ? loc.prefix ?? '' : '';
      if (!o.apply) {
        const doc = lifecycleConfiguration(rules, { prefix });
        return printJson(doc);
      }
      const storage = openStorage(config.destinationUrl);
      try {
        const r = await applyLifecycle(storage, rules, { prefix });
        if (g.json) return printJson(r);
        for (const [what, ids] of Object.entries(r.diff)) if ((ids as string[]).length) printLine(`${what.padEnd(9)} ${(ids as string[]).join(', ')}`);
        note(`applied ${r.applied.Rules?.length ?? 0} lifecycle rule(s) to bucket ${r.bucket}`);
      } finally {
        await storage.close();
      }
    });

  policy
    .command('iam')
    .description('print the least-privilege IAM policy for the configured bucket and prefix')
    .option('--features <list>', `comma-separated: ${POLICY_FEATURES.join(', ')}`, 'archive,restore,doctor')
    .option('--prefix-only-listing', 'allow listing only under the prefix (stricter; then a missing key answers 403 instead of 404, which breaks "already archived?" checks)')
    .action(async (o: { features: string; prefixOnlyListing?: boolean }, cmd: Command) => {
      const g = cmd.optsWithGlobals<PolicyOptions>();
      const config = await destination(g);
      const loc = parseStorageUrl(config.destinationUrl);
      if (loc.kind !== 's3') throw new UsageError(`an IAM policy is for S3 buckets; the destination ${config.destinationUrl} is a local directory`);
      const features = o.features.split(',').map((f) => f.trim()).filter(Boolean) as PolicyFeature[];
      printJson(iamPolicy({ bucket: loc.bucket, prefix: loc.prefix ?? '', features, listWholeBucket: !o.prefixOnlyListing }));
    });
}
