/**
 * etcd members are addressed by IP and their certificates carry IP SANs, so the gRPC client
 * sets an IP address as the TLS server name, and Node prints DEP0123 ("not permitted by RFC
 * 6066") once per process. The certificate is still checked against the IP; the warning only
 * buries real output. Only that one warning is dropped; every other warning is printed as before.
 */
const emitWarning = process.emitWarning.bind(process) as (...args: unknown[]) => void;

function warningCode(args: unknown[]): string | undefined {
  const [warning, typeOrOptions, code] = args;
  if (warning instanceof Error && 'code' in warning) return String(warning.code);
  if (typeof typeOrOptions === 'object' && typeOrOptions !== null && 'code' in typeOrOptions)
    return String(typeOrOptions.code);
  return typeof code === 'string' ? code : undefined;
}

process.emitWarning = ((...args: unknown[]) => {
  if (warningCode(args) === 'DEP0123') return;
  emitWarning(...args);
}) as typeof process.emitWarning;
