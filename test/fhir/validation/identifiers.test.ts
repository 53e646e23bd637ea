/** CONTRACT.md §3: CPF and CRM identifiers. */
import { BRAZILIAN_UFS, isValidCpf, isValidCrm, normalizeCpf } from '../../../src/fhir/validation/identifiers';

describe('CPF', () => {
  it.each(['52998224725', '11144477735', '12345678909'])('accepts %s (check digits correct)', (cpf) => {
    expect(isValidCpf(cpf)).toBe(true);
  });

  it.each([
    ['52998224724', 'second check digit wrong'],
    ['52998224735', 'first check digit wrong'],
    ['11111111111', 'one digit repeated'],
    ['00000000000', 'all zeros'],
    ['5299822472', '10 digits'],
    ['529982247250', '12 digits'],
    ['529.982.247-25', 'punctuation is not stored'],
    ['5299822472a', 'a letter'],
    ['', 'empty'],
  ])('rejects %s (%s)', (cpf) => {
    expect(isValidCpf(cpf)).toBe(false);
  });

  it('normalizes what people type to 11 digits', () => {
    expect(normalizeCpf('529.982.247-25')).toBe('52998224725');
    expect(normalizeCpf(' 529.982.247-25 ')).toBe('52998224725');
    expect(normalizeCpf('52998224725')).toBe('52998224725');
    expect(normalizeCpf('529982247-25')).toBe('52998224725');
  });

  it('does not normalize invalid or malformed input', () => {
    expect(normalizeCpf('529.982.247-24')).toBeUndefined();
    expect(normalizeCpf('111.111.111-11')).toBeUndefined();
    expect(normalizeCpf('529/982/247/25')).toBeUndefined();
    expect(normalizeCpf('52.998.224-725')).toBeUndefined();
    expect(normalizeCpf('cpf 52998224725')).toBeUndefined();
  });
});

describe('CRM', () => {
  it('has the 27 councils (26 states and DF)', () => {
    expect(new Set(BRAZILIAN_UFS).size).toBe(27);
    expect(BRAZILIAN_UFS).toContain('DF');
  });

  it.each(['SP-123456', 'RJ-1', 'DF-12345678', 'AC-0042', ...BRAZILIAN_UFS.map((uf) => `${uf}-1234`)])('accepts %s', (crm) => {
    expect(isValidCrm(crm)).toBe(true);
  });

  it.each([
    ['XX-123456', 'not a state'],
    ['BR-123456', 'the country, not a state'],
    ['sp-123456', 'lower case'],
    ['SP123456', 'no hyphen'],
    ['SP-', 'no number'],
    ['SP-123456789', '9 digits'],
    ['SP-0', 'zero'],
    ['SP-12a456', 'a letter in the number'],
    [' SP-123456', 'leading space'],
  ])('rejects %s (%s)', (crm) => {
    expect(isValidCrm(crm)).toBe(false);
  });
});
