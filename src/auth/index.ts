/**
 * The authorization server (CONTRACT section 4): `createAuth` builds it from the app's dependencies;
 * `auth.authenticate(header)` verifies a bearer token for the FHIR API.
 */
import type { Config } from '../config';
import type { FhirServices } from '../fhir/context';
import type { Database } from '../storage/database';
import { authenticate, type Grant } from './bearer';
import { ensureConfiguredClients } from './clients';
import { endpoints, type AuthServices } from './context';
import { SigningKeys, type SecretWrapper } from './keys';
import { createMailer, type Mailer } from './mail';
import { prepareDummyHash } from './passwords';

export type { Grant } from './bearer';
export type { Mailer, MailMessage } from './mail';

export interface Auth {
  services: AuthServices;
  /**
   * Verifies `Authorization: Bearer <access token>`; resolves the Grant, or throws the 401
   * OperationOutcomeError (with `WWW-Authenticate: Bearer ...`) for a missing, malformed, forged, expired or
   * revoked token.
   */
  authenticate(authorization: string | undefined): Promise<Grant>;
  /**
   * Creates the configured clients (bootstrap admin, healthmed-app) and the signing key; idempotent. Run
   * once before serving; every auth route also awaits it.
   */
  ready(): Promise<void>;
}

export function createAuth(deps: { config: Config; db: Database; fhir: FhirServices; mailer?: Mailer; secrets?: SecretWrapper }): Auth {
  const { config, db } = deps;
  const baseUrl = config.baseUrl;
  const services: AuthServices = {
    db,
    fhir: deps.fhir,
    mailer: deps.mailer ?? createMailer(config.smtpUrl, config.mailFrom),
    keys: new SigningKeys(db, {
      envKey: config.auth.signingKey,
      rotationSeconds: config.auth.signingKeyRotationDays * 86400,
      tokenLifetimeSeconds: config.auth.accessTokenTtlSeconds,
      secrets: deps.secrets,
    }),
    settings: { ...config.auth, issuer: baseUrl, fhirBaseUrl: `${baseUrl}/fhir`, tokenEndpoint: endpoints(baseUrl).token },
    remoteJwks: new Map(),
  };
  let starting: Promise<void> | undefined;
  const ready = () => {
    starting ??= (async () => {
      await ensureConfiguredClients(services);
      await services.keys.current();
      await prepareDummyHash();
    })().catch((err) => {
      starting = undefined;
      throw err;
    });
    return starting;
  };
  return {
    services,
    ready,
    authenticate: async (authorization) => {
      await ready();
      return authenticate(services, authorization);
    },
  };
}
