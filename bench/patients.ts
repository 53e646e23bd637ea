/**
 * Varied, valid Patients (a CPF with correct check digits, CONTRACT section 3) and their bulk load
 * through batch Bundles: https://hl7.org/fhir/R4/http.html#transaction
 */
import type { Bundle, BundleEntry, Patient } from '@medplum/fhirtypes';

export const CPF_SYSTEM = 'http://rnds.saude.gov.br/fhir/r4/NamingSystem/cpf';

const GIVEN_F = ['Ana', 'Maria', 'Juliana', 'Fernanda', 'Beatriz', 'Camila', 'Larissa', 'Patrícia', 'Luíza', 'Helena'];
const GIVEN_M = ['João', 'Pedro', 'Lucas', 'Gabriel', 'Rafael', 'Carlos', 'Mateus', 'Thiago', 'André', 'José'];
const FAMILY = ['Silva', 'Souza', 'Oliveira', 'Santos', 'Pereira', 'Lima', 'Carvalho', 'Ferreira', 'Rodrigues', 'Almeida', 'Costa', 'Gomes', 'Ribeiro', 'Martins', 'Araújo'];
const CITIES: Array<[string, string, string]> = [
  ['São Paulo', 'SP', '01310-100'],
  ['Rio de Janeiro', 'RJ', '20040-002'],
  ['Belo Horizonte', 'MG', '30130-010'],
  ['Salvador', 'BA', '40020-000'],
  ['Curitiba', 'PR', '80010-000'],
  ['Recife', 'PE', '50010-000'],
  ['Porto Alegre', 'RS', '90010-000'],
  ['Fortaleza', 'CE', '60025-000'],
  ['Manaus', 'AM', '69005-000'],
  ['Goiânia', 'GO', '74003-010'],
];
const STREETS = ['Rua das Flores', 'Avenida Paulista', 'Rua XV de Novembro', 'Avenida Brasil', 'Rua da Consolação', 'Rua Augusta'];
const MARITAL = [
  ['S', 'Never Married'],
  ['M', 'Married'],
  ['D', 'Divorced'],
  ['W', 'Widowed'],
];

/** CPF from a 9-digit base: two mod-11 check digits. */
export function cpf(base: number): string {
  const digits = String(base).padStart(9, '0').slice(-9).split('').map(Number);
  for (const length of [9, 10]) {
    let sum = 0;
    for (let i = 0; i < length; i++) sum += digits[i] * (length + 1 - i);
    const rest = (sum * 10) % 11;
    digits.push(rest === 10 ? 0 : rest);
  }
  return digits.join('');
}

/** The CPF of the n-th Patient of a series. */
export function patientCpf(n: number, series = 0): string {
  // Series 0 takes bases 100,000,000 + n, series 1 120,000,000 + n, ...: apart for n < 2e7, and clear of
  // 111,111,111, whose all-equal digits make an invalid CPF.
  return cpf(100_000_000 + series * 20_000_000 + n);
}

/** Deterministic, so two runs load the same data (mulberry32). */
export function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Where names come from; `skew` > 1 makes the first family names more common than the last. */
export interface NameLists {
  family: readonly string[];
  givenF: readonly string[];
  givenM: readonly string[];
  skew: number;
}

const BASIC_NAMES: NameLists = { family: FAMILY, givenF: GIVEN_F, givenM: GIVEN_M, skew: 1 };

/** The n-th Patient of a series; distinct series never share a CPF. */
export function patient(n: number, series = 0, names: NameLists = BASIC_NAMES): Patient {
  const rand = random(n * 7919 + series * 104729 + 1);
  const pick = <T>(list: readonly T[]): T => list[Math.floor(rand() * list.length)];
  const pickFamily = (): string => names.family[Math.floor(rand() ** names.skew * names.family.length)];
  const female = rand() < 0.52;
  const given = [pick(female ? names.givenF : names.givenM)];
  if (rand() < 0.4) given.push(pick(female ? names.givenF : names.givenM));
  const family = rand() < 0.5 ? `${pickFamily()} ${pickFamily()}` : pickFamily();
  const [city, state, postalCode] = pick(CITIES);
  const year = 1930 + Math.floor(rand() * 93);
  const month = String(1 + Math.floor(rand() * 12)).padStart(2, '0');
  const day = String(1 + Math.floor(rand() * 28)).padStart(2, '0');
  const phone = `+55 11 9${String(Math.floor(rand() * 1e8)).padStart(8, '0')}`;
  const [maritalCode, maritalDisplay] = pick(MARITAL);
  const resource: Patient = {
    resourceType: 'Patient',
    active: rand() < 0.95,
    identifier: [{ use: 'official', system: CPF_SYSTEM, value: patientCpf(n, series) }],
    name: [{ use: 'official', family, given }],
    gender: female ? 'female' : 'male',
    birthDate: `${year}-${month}-${day}`,
    telecom: [{ system: 'phone', value: phone, use: 'mobile' }],
    address: [
      {
        use: 'home',
        line: [`${pick(STREETS)}, ${1 + Math.floor(rand() * 3000)}`],
        city,
        state,
        postalCode,
        country: 'BR',
      },
    ],
    maritalStatus: {
      coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-MaritalStatus', code: maritalCode, display: maritalDisplay }],
    },
    communication: [{ language: { coding: [{ system: 'urn:ietf:bcp:47', code: 'pt-BR' }] }, preferred: true }],
  };
  if (rand() < 0.6) {
    const email = `${given[0]}.${family.split(' ')[0]}.${n}@example.com`.toLowerCase().normalize('NFD').replace(/[^\x20-\x7e]/g, '');
    resource.telecom!.push({ system: 'email', value: email });
  }
  if (rand() < 0.3) resource.name!.push({ use: 'usual', given: [given[0]] });
  if (rand() < 0.1) resource.deceasedBoolean = false;
  return resource;
}

function batch(from: number, to: number): Bundle {
  const entry: BundleEntry[] = [];
  for (let n = from; n < to; n++) {
    entry.push({ resource: patient(n), request: { method: 'POST', url: 'Patient' } });
  }
  return { resourceType: 'Bundle', type: 'batch', entry };
}

/** `Patient/<id>` out of a batch response entry's location (relative or absolute). */
function idFrom(entry: BundleEntry): string | undefined {
  const location = entry.response?.location ?? '';
  return /(?:^|\/)Patient\/([A-Za-z0-9\-.]{1,64})(?:\/|$)/.exec(location)?.[1] ?? entry.resource?.id;
}

export interface LoadResult {
  ids: string[];
  failed: number;
  seconds: number;
}

/** Loads `count` Patients through `POST {fhirBase}` batch Bundles, `concurrency` in flight. */
export async function loadPatients(
  fhirBase: string,
  count: number,
  batchSize: number,
  concurrency: number,
  progress: (done: number) => void,
  headers: Record<string, string> = {},
): Promise<LoadResult> {
  const ids: string[] = [];
  let failed = 0;
  let next = 0;
  let done = 0;
  const started = process.hrtime.bigint();

  const worker = async (): Promise<void> => {
    while (next < count) {
      const from = next;
      const to = Math.min(count, from + batchSize);
      next = to;
      const response = await fetch(fhirBase, {
        method: 'POST',
        headers: { 'content-type': 'application/fhir+json', accept: 'application/fhir+json', ...headers },
        body: JSON.stringify(batch(from, to)),
        signal: AbortSignal.timeout(300_000),
      });
      const text = await response.text();
      if (response.status !== 200) {
        throw new Error(`POST ${fhirBase} batch answered ${response.status}: ${text.slice(0, 2000)}`);
      }
      const result = JSON.parse(text) as Bundle;
      for (const entry of result.entry ?? []) {
        const id = entry.response?.status?.startsWith('201') ? idFrom(entry) : undefined;
        if (id) ids.push(id);
        else failed++;
      }
      failed += Math.max(0, to - from - (result.entry?.length ?? 0));
      done += to - from;
      progress(done);
    }
  };

  await Promise.all(Array.from({ length: concurrency }, worker));
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  return { ids, failed, seconds };
}
