-- The authorization server (CONTRACT section 4): accounts, OAuth clients, codes, refresh token families,
-- signing keys, replay and revocation lists, login throttling, second factors and password resets.
-- Every secret a client or user presents (codes, refresh tokens, reset tokens, client secrets, recovery
-- codes) is stored as its SHA-256 hash only; passwords as argon2id hashes.

-- A person who signs in: a patient (self sign-up) or a practitioner (created by an admin).
CREATE TABLE auth_users (
  id uuid PRIMARY KEY,
  role text NOT NULL CHECK (role IN ('patient', 'practitioner')),
  -- Lower-cased; login by e-mail.
  email text NOT NULL,
  -- 11 digits (patients); login by CPF.
  cpf text,
  -- UF-NUMBER (practitioners); login by CRM.
  crm text,
  -- "Patient/<id>" or "Practitioner/<id>".
  fhir_user text NOT NULL,
  password_hash text NOT NULL,
  -- RFC 6238 shared secret (base32) once enrolment is confirmed; totp_pending_secret while enrolling.
  totp_secret text,
  totp_pending_secret text,
  -- The last accepted time step: an OTP is accepted once (RFC 6238 section 5.2).
  totp_last_step integer,
  created_at timestamptz NOT NULL DEFAULT now(),
  password_changed_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX auth_users_email ON auth_users (email);
CREATE UNIQUE INDEX auth_users_cpf ON auth_users (cpf) WHERE cpf IS NOT NULL;
CREATE UNIQUE INDEX auth_users_crm ON auth_users (crm) WHERE crm IS NOT NULL;

CREATE TABLE auth_recovery_codes (
  user_id uuid NOT NULL REFERENCES auth_users (id) ON DELETE CASCADE,
  code_hash text NOT NULL,
  used_at timestamptz,
  PRIMARY KEY (user_id, code_hash)
);

CREATE TABLE auth_password_resets (
  token_hash text PRIMARY KEY,
  user_id uuid NOT NULL REFERENCES auth_users (id) ON DELETE CASCADE,
  expires_at timestamptz NOT NULL,
  used_at timestamptz
);
CREATE INDEX auth_password_resets_expires ON auth_password_resets (expires_at);

-- OAuth clients (RFC 7591 vocabulary). auth_method: none (public, PKCE), client_secret_basic, private_key_jwt.
CREATE TABLE auth_clients (
  client_id text PRIMARY KEY,
  client_name text,
  auth_method text NOT NULL CHECK (auth_method IN ('none', 'client_secret_basic', 'private_key_jwt')),
  secret_hash text,
  redirect_uris jsonb NOT NULL DEFAULT '[]',
  grant_types jsonb NOT NULL DEFAULT '[]',
  -- Space-separated scopes the client may be granted.
  scope text NOT NULL,
  jwks jsonb,
  jwks_uri text,
  -- First-party clients may use the JSON login (POST /auth/login); others only the browser flow.
  first_party boolean NOT NULL DEFAULT false,
  created_at timestamptz NOT NULL DEFAULT now()
);

-- A login in progress: the browser flow's authorization request, or a password accepted and a second
-- factor awaited. Addressed by the hash of an opaque handle the browser or app holds.
CREATE TABLE auth_pending (
  handle_hash text PRIMARY KEY,
  kind text NOT NULL CHECK (kind IN ('authorize', 'mfa')),
  params jsonb NOT NULL,
  user_id uuid REFERENCES auth_users (id) ON DELETE CASCADE,
  attempts integer NOT NULL DEFAULT 0,
  expires_at timestamptz NOT NULL
);
CREATE INDEX auth_pending_expires ON auth_pending (expires_at);

-- Authorization codes: single use, 60 seconds. family_id is set when the code is redeemed, so a second
-- redemption can revoke what the first one issued (OAuth 2.1 section 4.1.3).
CREATE TABLE auth_codes (
  code_hash text PRIMARY KEY,
  client_id text NOT NULL,
  user_id uuid NOT NULL REFERENCES auth_users (id) ON DELETE CASCADE,
  redirect_uri text,
  scope text NOT NULL,
  code_challenge text,
  nonce text,
  auth_time timestamptz NOT NULL,
  expires_at timestamptz NOT NULL,
  used_at timestamptz,
  family_id uuid
);
CREATE INDEX auth_codes_expires ON auth_codes (expires_at);

-- One sign-in's tokens: every refresh token rotated from one code, and the access tokens issued with them
-- (their `fam` claim). Revoking the family revokes all of them.
CREATE TABLE auth_token_families (
  id uuid PRIMARY KEY,
  client_id text NOT NULL,
  user_id uuid NOT NULL REFERENCES auth_users (id) ON DELETE CASCADE,
  scope text NOT NULL,
  auth_time timestamptz NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz NOT NULL,
  revoked_at timestamptz
);
CREATE INDEX auth_token_families_user ON auth_token_families (user_id);
CREATE INDEX auth_token_families_expires ON auth_token_families (expires_at);

CREATE TABLE auth_refresh_tokens (
  token_hash text PRIMARY KEY,
  family_id uuid NOT NULL REFERENCES auth_token_families (id) ON DELETE CASCADE,
  created_at timestamptz NOT NULL DEFAULT now(),
  used_at timestamptz
);
CREATE INDEX auth_refresh_tokens_family ON auth_refresh_tokens (family_id);

-- Access tokens revoked before they expire (RFC 7009), by jti; rows go once the token would have expired.
CREATE TABLE auth_revoked_tokens (
  jti text PRIMARY KEY,
  expires_at timestamptz NOT NULL
);
CREATE INDEX auth_revoked_tokens_expires ON auth_revoked_tokens (expires_at);

-- jti of every client assertion seen (RFC 7523 section 3, SMART Backend Services), until it expires.
CREATE TABLE auth_assertion_jtis (
  client_id text NOT NULL,
  jti text NOT NULL,
  expires_at timestamptz NOT NULL,
  PRIMARY KEY (client_id, jti)
);
CREATE INDEX auth_assertion_jtis_expires ON auth_assertion_jtis (expires_at);

-- Signing keys for access and ID tokens. The newest unretired key signs; a retired key stays published in
-- the JWKS until the tokens it signed have expired.
CREATE TABLE auth_signing_keys (
  kid text PRIMARY KEY,
  alg text NOT NULL,
  public_jwk jsonb NOT NULL,
  private_jwk jsonb NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  retired_at timestamptz
);

-- Failed logins per account and per client address, shared by every server (429 with Retry-After).
CREATE TABLE auth_login_failures (
  key text PRIMARY KEY,
  failures integer NOT NULL,
  window_start timestamptz NOT NULL,
  locked_until timestamptz
);
CREATE INDEX auth_login_failures_window ON auth_login_failures (window_start);
