/**
 * SQL for OAuth clients (auth_clients).
 */
import type { JSONWebKeySet } from 'jose';
import type { Queryable } from '../../storage/database';

export type ClientAuthMethod = 'none' | 'client_secret_basic' | 'private_key_jwt';

export interface ClientRow {
  client_id: string;
  client_name: string | null;
  auth_method: ClientAuthMethod;
  secret_hash: string | null;
  redirect_uris: string[];
  grant_types: string[];
  scope: string;
  jwks: JSONWebKeySet | null;
  jwks_uri: string | null;
  first_party: boolean;
}

export interface ClientRecord {
  clientId: string;
  clientName?: string;
  authMethod: ClientAuthMethod;
  secretHash?: string;
  redirectUris: string[];
  grantTypes: string[];
  scope: string;
  jwks?: JSONWebKeySet;
  jwksUri?: string;
  firstParty?: boolean;
}

const COLUMNS = 'client_id, client_name, auth_method, secret_hash, redirect_uris, grant_types, scope, jwks, jwks_uri, first_party';

export async function findClient(q: Queryable, clientId: string): Promise<ClientRow | undefined> {
  const r = await q.query<ClientRow>(`SELECT ${COLUMNS} FROM auth_clients WHERE client_id = $1`, [clientId]);
  return r.rows[0];
}

function values(c: ClientRecord): unknown[] {
  return [
    c.clientId,
    c.clientName ?? null,
    c.authMethod,
    c.secretHash ?? null,
    JSON.stringify(c.redirectUris),
    JSON.stringify(c.grantTypes),
    c.scope,
    c.jwks ? JSON.stringify(c.jwks) : null,
    c.jwksUri ?? null,
    c.firstParty ?? false,
  ];
}

/** Registers a new client; false when the client_id is taken. */
export async function insertClient(q: Queryable, c: ClientRecord): Promise<boolean> {
  const r = await q.query(
    `INSERT INTO auth_clients (${COLUMNS}) VALUES ($1, $2, $3, $4, $5::jsonb, $6::jsonb, $7, $8::jsonb, $9, $10)
     ON CONFLICT (client_id) DO NOTHING`,
    values(c),
  );
  return r.rowCount === 1;
}

/** Creates or brings up to date a client the configuration defines (bootstrap admin, first-party app). */
export async function upsertClient(q: Queryable, c: ClientRecord): Promise<void> {
  await q.query(
    `INSERT INTO auth_clients (${COLUMNS}) VALUES ($1, $2, $3, $4, $5::jsonb, $6::jsonb, $7, $8::jsonb, $9, $10)
     ON CONFLICT (client_id) DO UPDATE SET client_name = EXCLUDED.client_name, auth_method = EXCLUDED.auth_method,
       secret_hash = EXCLUDED.secret_hash, redirect_uris = EXCLUDED.redirect_uris, grant_types = EXCLUDED.grant_types,
       scope = EXCLUDED.scope, jwks = EXCLUDED.jwks, jwks_uri = EXCLUDED.jwks_uri, first_party = EXCLUDED.first_party`,
    values(c),
  );
}
