/**
 * Alertmanager on the monitor host: Debian's `prometheus-alertmanager` package (0.25 in
 * bookworm), its configuration rendered from the topology's `monitoring.alertmanager`, bound
 * to loopback for the Prometheus beside it.
 *
 * Field names follow Alertmanager v0.25.0's config/notifiers.go (prometheus/alertmanager at
 * 258fab7cdd551f2cf251ed0348f0ad7289aee789): email `auth_password_file` (l. 236), PagerDuty
 * `routing_key_file` (l. 279), Discord `webhook_url` only (l. 212), Telegram `bot_token` and an
 * int64 `chat_id` (l. 733–734); the webhook's bearer token is the common HTTP client's
 * `authorization.credentials_file`. Telegram's `bot_token_file` arrived in 0.26.0 (#3226) and
 * Discord's `webhook_url_file` in 0.27.0 (#3555, fixed in 0.28.0 by #3728) per CHANGELOG.md at
 * 68fb2d5759b3a92c0bb2a1a13d4ef7ff5b06256d. So on 0.25 those two secrets must be inline: the
 * plan renders a template naming the secret files, and `vigil-alertmanager-config` assembles
 * the real config from them on the host, as root, before every start, into a root:prometheus
 * 0640 file under /run (never written to disk by the plan, never in a bundle).
 */
import { stringify as toYaml } from 'yaml';
import type { Monitoring, Receiver } from '../topology/schema.js';

export const ALERTMANAGER_CONFIG_PATH = '/etc/prometheus/alertmanager.yml';
export const ALERTMANAGER_DEFAULTS_PATH = '/etc/default/prometheus-alertmanager';
export const ALERTMANAGER_LISTEN = '127.0.0.1:9093';
/** The root route's receiver when the operator names none: it delivers nowhere. */
export const UNROUTED_RECEIVER = 'vigil-unrouted';
/** With inline secrets: the template the plan renders, and where the host assembles it. */
export const ALERTMANAGER_TEMPLATE_PATH = '/etc/prometheus/alertmanager.yml.in';
export const ALERTMANAGER_ASSEMBLED_PATH = '/run/vigil-alertmanager/alertmanager.yml';
export const ALERTMANAGER_ASSEMBLE_COMMAND = '/usr/local/sbin/vigil-alertmanager-config';
export const ALERTMANAGER_DROP_IN_PATH =
  '/etc/systemd/system/prometheus-alertmanager.service.d/vigil-secrets.conf';

/** Where a secret the packaged Alertmanager takes only inline is spliced in on the host. */
function inlineSecret(kind: 'telegram' | 'discord', file: string): string {
  return `@vigil-secret:${kind}:${file}@`;
}

/** Whether the monitor's Alertmanager needs secrets spliced in on the host (Telegram, Discord). */
export function needsInlineSecrets(monitoring: Monitoring): boolean {
  return (monitoring.alertmanager?.receivers ?? []).some((r) => r.telegram || r.discord);
}

function receiverConfig(r: Receiver): Record<string, unknown> {
  return {
    name: r.name,
    ...(r.webhook
      ? {
          webhook_configs: [
            {
              url: r.webhook.url,
              send_resolved: true,
              ...(r.webhook.credentialsFile
                ? {
                    http_config: {
                      authorization: {
                        type: 'Bearer',
                        credentials_file: r.webhook.credentialsFile,
                      },
                    },
                  }
                : {}),
            },
          ],
        }
      : {}),
    ...(r.email
      ? {
          email_configs: [
            {
              to: r.email.to,
              from: r.email.from,
              smarthost: r.email.smarthost,
              ...(r.email.authUsername ? { auth_username: r.email.authUsername } : {}),
              ...(r.email.authPasswordFile ? { auth_password_file: r.email.authPasswordFile } : {}),
              send_resolved: true,
            },
          ],
        }
      : {}),
    ...(r.pagerduty
      ? {
          pagerduty_configs: [
            { routing_key_file: r.pagerduty.routingKeyFile, send_resolved: true },
          ],
        }
      : {}),
    ...(r.telegram
      ? {
          telegram_configs: [
            {
              bot_token: inlineSecret('telegram', r.telegram.botTokenFile),
              chat_id: r.telegram.chatId,
              send_resolved: true,
            },
          ],
        }
      : {}),
    ...(r.discord
      ? {
          discord_configs: [
            { webhook_url: inlineSecret('discord', r.discord.webhookUrlFile), send_resolved: true },
          ],
        }
      : {}),
  };
}

/**
 * alertmanager.yml: one child route per severity the operator mapped (matched on the
 * `severity` label every Vigil rule carries), the rest to the default receiver.
 */
export function alertmanagerConfig(monitoring: Monitoring): string {
  const am = monitoring.alertmanager;
  const receivers = (am?.receivers ?? []).map(receiverConfig);
  const route = am?.route;
  const root = route?.receiver ?? UNROUTED_RECEIVER;
  if (route?.receiver === undefined) receivers.push({ name: UNROUTED_RECEIVER });
  const severities = Object.entries(route?.severities ?? {}).sort(([a], [b]) =>
    a < b ? -1 : a > b ? 1 : 0,
  );
  const config = {
    route: {
      receiver: root,
      group_by: route?.groupBy ?? ['alertname', 'chain', 'host'],
      group_wait: route?.groupWait ?? '30s',
      group_interval: route?.groupInterval ?? '5m',
      repeat_interval: route?.repeatInterval ?? '4h',
      ...(severities.length > 0
        ? {
            routes: severities.map(([severity, receiver]) => ({
              receiver,
              matchers: [`severity="${severity}"`],
            })),
          }
        : {}),
    },
    // A warning about something that also pages is noise while the page is firing.
    inhibit_rules: [
      {
        source_matchers: ['severity="page"'],
        target_matchers: ['severity="warning"'],
        equal: ['alertname', 'host'],
      },
    ],
    receivers,
  };
  return (
    '# Alertmanager on the Vigil monitor (rendered by `vigil plan` from monitoring.alertmanager).\n' +
    (needsInlineSecrets(monitoring)
      ? `# A template: ${ALERTMANAGER_ASSEMBLE_COMMAND} splices in the secret files it names.\n`
      : '# Secrets are files on this host, root:prometheus 0640; none is written here.\n') +
    toYaml(config, { lineWidth: 0 })
  );
}

/**
 * The packaged unit's arguments: loopback only (Prometheus runs beside it) and no gossip
 * cluster, whose default listener is 0.0.0.0:9094.
 */
export function alertmanagerDefaults(monitoring?: Monitoring): string {
  const config =
    monitoring && needsInlineSecrets(monitoring)
      ? ALERTMANAGER_ASSEMBLED_PATH
      : ALERTMANAGER_CONFIG_PATH;
  return `ARGS="--config.file=${config} --web.listen-address=${ALERTMANAGER_LISTEN} --cluster.listen-address="\n`;
}

/**
 * `vigil-alertmanager-config TEMPLATE OUT`: each `@vigil-secret:KIND:FILE@` in the template is
 * replaced by the first line of FILE, which must look like that kind of secret (a Telegram bot
 * token, a Discord webhook URL: characters that need no quoting in a YAML double-quoted
 * scalar); anything else refuses the whole config, and the old one stays. The result is
 * written beside OUT and renamed into place, root:prometheus 0640.
 */
export const ALERTMANAGER_ASSEMBLE_SCRIPT = `#!/bin/sh
set -eu
template="$1"; out="$2"
mkdir -p "$(dirname "$out")"
tmp="$(mktemp "$(dirname "$out")/.alertmanager.XXXXXX")"
trap 'rm -f "$tmp"' EXIT
while IFS= read -r line || [ -n "$line" ]; do
  case "$line" in
    *@vigil-secret:*@*)
      spec="\${line#*@vigil-secret:}"; spec="\${spec%%@*}"
      kind="\${spec%%:*}"; file="\${spec#*:}"
      case "$kind" in
        telegram) pattern='^[0-9]+:[A-Za-z0-9_-]+$' ;;
        discord) pattern='^https://(discord|discordapp)[.]com/api/webhooks/[0-9]+/[A-Za-z0-9_-]+$' ;;
        *) echo "vigil-alertmanager-config: unknown secret kind $kind" >&2; exit 1 ;;
      esac
      value="$(head -n 1 "$file" | tr -d '\r')"
      if ! printf '%s\n' "$value" | grep -Eq "$pattern"; then
        echo "vigil-alertmanager-config: $file does not hold a $kind secret" >&2; exit 1
      fi
      printf '%s%s%s\n' "\${line%%@vigil-secret:*}" "$value" "\${line#*@vigil-secret:*@}" >>"$tmp" ;;
    *) printf '%s\n' "$line" >>"$tmp" ;;
  esac
done <"$template"
chmod 0640 "$tmp"
chgrp "\${VIGIL_ALERTMANAGER_GROUP:-prometheus}" "$tmp"
mv "$tmp" "$out"
`;

/**
 * A drop-in for the packaged unit: assemble the config as root before every start (the unit
 * itself runs as prometheus), in a runtime directory only root and prometheus can read.
 */
export function alertmanagerDropIn(): string {
  return [
    '[Service]',
    'RuntimeDirectory=vigil-alertmanager',
    'RuntimeDirectoryMode=0750',
    `ExecStartPre=+${ALERTMANAGER_ASSEMBLE_COMMAND} ${ALERTMANAGER_TEMPLATE_PATH} ${ALERTMANAGER_ASSEMBLED_PATH}`,
    '',
  ].join('\n');
}
