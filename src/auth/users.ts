/**
 * Accounts: patient self sign-up and practitioner creation (CONTRACT section 4), and finding the account a
 * login names. Sign-up writes the person's FHIR resource (Patient with the CPF identifier, Practitioner with
 * the CRM identifier) through the FHIR router, validated like any other write, in the same database
 * transaction as the account: either both exist or neither.
 */
import { randomUUID } from 'node:crypto';
import type { Patient, Practitioner, Resource } from '@medplum/fhirtypes';
import { systemContext } from '../access/context';
import { route } from '../fhir/router';
import { badRequest, conflict } from '../fhir/outcomes';
import { CPF_SYSTEM, CRM_SYSTEM, isValidCrm, normalizeCpf } from '../fhir/validation/identifiers';
import { pgErrorCode, type Queryable } from '../storage/database';
import type { AuthServices } from './context';
import { assertStrongPassword, hashPassword } from './passwords';
import { findUserByLogin, insertUser, takenIdentifiers, type Role } from './store/users';

const PATIENT_PROFILE = 'http://fhir.healthmed.com.br/StructureDefinition/healthmed-patient';
const PRACTITIONER_PROFILE = 'http://fhir.healthmed.com.br/StructureDefinition/healthmed-practitioner';

/** A pragmatic address check (RFC 5321 lengths; one @, a dot in the domain, no spaces). */
const EMAIL = /^[^\s@"<>()\[\]\\,;:]+@[^\s@"<>()\[\]\\,;:]+\.[^\s@"<>()\[\]\\,;:]+$/;

export function normalizeEmail(value: unknown): string | undefined {
  if (typeof value !== 'string') return undefined;
  const email = value.trim().toLowerCase();
  return email.length <= 254 && EMAIL.test(email) ? email : undefined;
}

/** `SP-123456`, also typed as `sp 123456` or `SP123456`. */
export function normalizeCrm(value: unknown): string | undefined {
  if (typeof value !== 'string') return undefined;
  const m = /^\s*([A-Za-z]{2})\s*[- /]?\s*(\d{1,8})\s*$/.exec(value);
  const crm = m ? `${m[1].toUpperCase()}-${m[2]}` : undefined;
  return crm && isValidCrm(crm) ? crm : undefined;
}

/** What a login string names: an e-mail, a CPF (with or without punctuation) or a CRM. */
export function parseLogin(login: string): { email?: string; cpf?: string; crm?: string } {
  if (login.includes('@')) return { email: login.trim().toLowerCase() };
  const cpf = normalizeCpf(login);
  if (cpf) return { cpf };
  const crm = normalizeCrm(login);
  return crm ? { crm } : {};
}

export function findAccount(auth: AuthServices, login: string) {
  const named = parseLogin(login);
  if (!named.email && !named.cpf && !named.crm) return Promise.resolve(undefined);
  return findUserByLogin(auth.db, named);
}

interface HumanNameInput {
  given?: string[];
  family?: string;
}

function parseName(value: unknown): HumanNameInput {
  const name = value as { given?: unknown; family?: unknown } | undefined;
  if (!name || typeof name !== 'object' || Array.isArray(name)) throw badRequest('name must be an object {given, family}', 'name');
  const out: HumanNameInput = {};
  if (name.given !== undefined) {
    if (!Array.isArray(name.given) || !name.given.every((g) => typeof g === 'string' && g.trim() !== '' && g.length <= 100)) {
      throw badRequest('name.given must be a list of non-empty strings', 'name.given');
    }
    out.given = (name.given as string[]).map((g) => g.trim());
  }
  if (name.family !== undefined) {
    if (typeof name.family !== 'string' || name.family.trim() === '' || name.family.length > 100) {
      throw badRequest('name.family must be a non-empty string', 'name.family');
    }
    out.family = name.family.trim();
  }
  if (!out.family && !out.given?.length) throw badRequest('name needs a family or a given name', 'name');
  return out;
}

function parseBirthDate(value: unknown): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || !/^\d{4}-\d{2}-\d{2}$/.test(value)) throw badRequest('birthDate must be a date YYYY-MM-DD', 'birthDate');
  const date = new Date(`${value}T00:00:00Z`);
  if (Number.isNaN(date.getTime()) || date.toISOString().slice(0, 10) !== value || date.getTime() > Date.now()) {
    throw badRequest('birthDate must be a real date, not in the future', 'birthDate');
  }
  return value;
}

function requireEmail(value: unknown): string {
  const email = normalizeEmail(value);
  if (!email) throw badRequest('A valid e-mail address is required', 'email');
  return email;
}

function assertFree(taken: string[]): void {
  if (taken.length > 0) throw conflict(`An account with this ${taken.join(' and ')} already exists`, 'duplicate');
}

/** Creates the resource through the FHIR router (validation, profiles, indexes) inside the account's transaction. */
async function createResource(auth: AuthServices, tx: Queryable, resource: Resource): Promise<string> {
  const res = await route(
    { ...auth.fhir, access: systemContext(), tx },
    { method: 'POST', path: resource.resourceType, query: new URLSearchParams(), body: resource },
  );
  const id = res.body?.id;
  if (!id) throw new Error(`Creating ${resource.resourceType} returned no id`);
  return `${resource.resourceType}/${id}`;
}

async function createAccount(
  auth: AuthServices,
  account: { role: Role; email: string; cpf?: string; crm?: string; password: string },
  resource: Resource,
): Promise<string> {
  // Refuse a taken identifier before spending an argon2 hash on it; the unique indexes decide races.
  assertFree(await takenIdentifiers(auth.db, account.email, account.cpf, account.crm));
  const passwordHash = await hashPassword(account.password);
  try {
    return await auth.db.transaction(async (tx) => {
      const fhirUser = await createResource(auth, tx, resource);
      await insertUser(tx, { id: randomUUID(), role: account.role, email: account.email, cpf: account.cpf, crm: account.crm, fhirUser, passwordHash });
      return fhirUser;
    });
  } catch (err) {
    // A unique violation is a sign-up racing another for the same identifier. (Its driver message names the
    // value, which is PHI: it must not reach the error log.)
    if (pgErrorCode(err) === '23505') {
      assertFree(await takenIdentifiers(auth.db, account.email, account.cpf, account.crm));
      throw conflict('An account with these details already exists', 'duplicate');
    }
    throw err;
  }
}

/** POST /auth/register with role patient: 201 `{patient: "Patient/<id>"}`. */
export async function registerPatient(auth: AuthServices, body: Record<string, unknown>): Promise<{ patient: string }> {
  const email = requireEmail(body.email);
  const cpf = typeof body.cpf === 'string' ? normalizeCpf(body.cpf) : undefined;
  if (!cpf) throw badRequest('A valid CPF is required (11 digits, check digits verified)', 'cpf');
  assertStrongPassword(body.password);
  const name = parseName(body.name);
  const birthDate = parseBirthDate(body.birthDate);
  const patient: Patient = {
    resourceType: 'Patient',
    meta: { profile: [PATIENT_PROFILE] },
    active: true,
    identifier: [{ use: 'official', system: CPF_SYSTEM, value: cpf }],
    name: [{ use: 'official', ...name }],
    telecom: [{ system: 'email', value: email, use: 'home' }],
  };
  if (birthDate) patient.birthDate = birthDate;
  const fhirUser = await createAccount(auth, { role: 'patient', email, cpf, password: body.password }, patient);
  return { patient: fhirUser };
}

/** POST /auth/register with role practitioner (admin token): 201 `{practitioner: "Practitioner/<id>"}`. */
export async function registerPractitioner(auth: AuthServices, body: Record<string, unknown>): Promise<{ practitioner: string }> {
  const crm = normalizeCrm(body.crm);
  if (!crm) throw badRequest('A valid CRM is required (UF-NUMBER, e.g. SP-123456)', 'crm');
  const email = requireEmail(body.email);
  assertStrongPassword(body.password);
  const name = parseName(body.name);
  const practitioner: Practitioner = {
    resourceType: 'Practitioner',
    meta: { profile: [PRACTITIONER_PROFILE] },
    active: true,
    identifier: [{ use: 'official', system: CRM_SYSTEM, value: crm }],
    name: [{ use: 'official', ...name }],
    telecom: [{ system: 'email', value: email, use: 'work' }],
  };
  const fhirUser = await createAccount(auth, { role: 'practitioner', email, crm, password: body.password }, practitioner);
  return { practitioner: fhirUser };
}
