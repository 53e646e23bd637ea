/**
 * Brazilian identifiers the contract requires on every write (CONTRACT.md §3):
 * CPF (Cadastro de Pessoas Físicas, the national taxpayer number, used by RNDS as the patient identifier) and
 * CRM (Conselho Regional de Medicina registration: the state council's UF and the doctor's number).
 */

export const CPF_SYSTEM = 'http://rnds.saude.gov.br/fhir/r4/NamingSystem/cpf';
export const CRM_SYSTEM = 'http://fhir.healthmed.com.br/sid/crm';

/** The 26 states and the Federal District, each with its own Conselho Regional de Medicina. */
export const BRAZILIAN_UFS: readonly string[] = [
  'AC', 'AL', 'AP', 'AM', 'BA', 'CE', 'DF', 'ES', 'GO', 'MA', 'MT', 'MS', 'MG', 'PA',
  'PB', 'PR', 'PE', 'PI', 'RJ', 'RN', 'RS', 'RO', 'RR', 'SC', 'SP', 'SE', 'TO',
];

const UF_SET = new Set(BRAZILIAN_UFS);

/**
 * A CPF as stored: exactly 11 digits, both check digits correct (modulo-11 scheme of the Receita Federal),
 * and not one digit repeated eleven times (those pass the check digits but are never issued).
 */
export function isValidCpf(value: string): boolean {
  if (!/^\d{11}$/.test(value) || /^(\d)\1{10}$/.test(value)) {
    return false;
  }
  return checkDigit(value, 9) === value.charCodeAt(9) - 48 && checkDigit(value, 10) === value.charCodeAt(10) - 48;
}

/** Weighted sum of the first `length` digits with weights length+1 .. 2; remainder 10 counts as 0. */
function checkDigit(digits: string, length: number): number {
  let sum = 0;
  for (let i = 0; i < length; i++) {
    sum += (digits.charCodeAt(i) - 48) * (length + 1 - i);
  }
  const rest = (sum * 10) % 11;
  return rest === 10 ? 0 : rest;
}

/**
 * Accepts a CPF as people type it ("123.456.789-09", "12345678909", surrounding spaces) and returns the
 * 11 digits, or undefined when it is not a well-formed, valid CPF.
 */
export function normalizeCpf(input: string): string | undefined {
  const m = /^\s*(\d{3})\.?(\d{3})\.?(\d{3})[-.]?(\d{2})\s*$/.exec(input);
  if (!m) {
    return undefined;
  }
  const digits = m[1] + m[2] + m[3] + m[4];
  return isValidCpf(digits) ? digits : undefined;
}

/**
 * A CRM as stored: `UF-NUMBER`, UF one of the 27 council codes (upper case), NUMBER 1 to 8 digits and not zero.
 * Councils number registrations sequentially (the largest, CREMESP, is in the six digits); eight leaves room.
 */
export function isValidCrm(value: string): boolean {
  const m = /^([A-Z]{2})-(\d{1,8})$/.exec(value);
  return m !== null && UF_SET.has(m[1]) && /[1-9]/.test(m[2]);
}
