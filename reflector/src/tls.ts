import { readFile } from "node:fs/promises";
import { createSecureContext } from "node:tls";
import { ReflectorError } from "./errors";

/** A certificate and its private key, PEM-encoded: what a reflector serves `wss://` and `https://` with. */
export interface TlsOptions {
  /** The certificate chain (the server's certificate first, then intermediates), PEM. */
  readonly cert: string | Uint8Array;
  /** The certificate's private key, PEM (unencrypted). */
  readonly key: string | Uint8Array;
}

/** Names of where the certificate and key came from, for error messages (the CLI passes file names). */
interface TlsOrigin {
  readonly cert: string;
  readonly key: string;
}

const OPTION_ORIGIN: TlsOrigin = { cert: "option tls.cert", key: "option tls.key" };

/**
 * Checks that `tls` holds a loadable certificate and a key that belongs to it (Node reports both
 * only when a TLS server starts, and with OpenSSL's words), and returns it as buffers.
 * @throws {ReflectorError} saying which of the two is wrong and what to do.
 */
export function checkTls(tls: TlsOptions, origin: TlsOrigin = OPTION_ORIGIN): { cert: Buffer; key: Buffer } {
  if (tls === null || typeof tls !== "object") throw new ReflectorError("option tls must be { cert, key } (PEM strings or bytes)");
  const cert = pemBytes(tls.cert, origin.cert);
  const key = pemBytes(tls.key, origin.key);
  attempt(() => createSecureContext({ cert }), `${origin.cert} is not a PEM certificate (it should begin with -----BEGIN CERTIFICATE-----)`);
  attempt(() => createSecureContext({ key }), `${origin.key} is not an unencrypted PEM private key (it should begin with -----BEGIN PRIVATE KEY----- or -----BEGIN EC/RSA PRIVATE KEY-----)`);
  attempt(() => createSecureContext({ cert, key }), `${origin.key} does not belong to the certificate in ${origin.cert}; give the key the certificate was issued for`);
  return { cert, key };
}

/** Reads a certificate and key file (the CLI's `--tls-cert` and `--tls-key`) and checks them with {@link checkTls}. */
export async function readTlsFiles(certFile: string, keyFile: string): Promise<{ cert: Buffer; key: Buffer }> {
  const [cert, key] = await Promise.all([readPem(certFile, "certificate"), readPem(keyFile, "key")]);
  return checkTls({ cert, key }, { cert: `the TLS certificate file ${certFile}`, key: `the TLS key file ${keyFile}` });
}

async function readPem(file: string, what: string): Promise<Buffer> {
  try {
    return await readFile(file);
  } catch (cause) {
    const code = (cause as { code?: unknown }).code;
    const why = code === "ENOENT" ? "no such file" : code === "EACCES" ? "permission denied: the reflector's user must be able to read it" : String((cause as Error).message);
    throw new ReflectorError(`cannot read TLS ${what} file ${file}: ${why}`, { cause });
  }
}

function pemBytes(value: string | Uint8Array, origin: string): Buffer {
  if (typeof value === "string") return Buffer.from(value, "utf8");
  if (value instanceof Uint8Array) return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  throw new ReflectorError(`${origin} must be a PEM string or bytes`);
}

function attempt(load: () => unknown, message: string): void {
  try {
    load();
  } catch (cause) {
    throw new ReflectorError(`${message} (${(cause as Error).message})`, { cause });
  }
}
