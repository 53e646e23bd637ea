/**
 * Agreement with the reference Java validator on the official FHIR validator test cases
 * (https://github.com/FHIR/fhir-test-cases, validator/; selection in shared/conformance/validation/SOURCE.md).
 * A case counts as invalid when parsing throws or validation reports an error or fatal issue.
 */
import * as fs from 'fs';
import * as path from 'path';
import { OperationOutcomeError } from '../../../src/fhir/outcomes';
import { loadValidator, parseFhirJson } from '../../../src/fhir/validation';

const corpus = path.resolve(__dirname, '../../../../shared/conformance/validation');
const profiles = path.resolve(__dirname, '../../../fhir-profiles');

interface Case {
  name: string;
  file: string;
  expect: 'valid' | 'invalid';
  malformedJson?: boolean;
  javaErrors: string[];
}

describe('conformance with the reference validator (fhir-test-cases)', () => {
  const validator = loadValidator(profiles);
  const cases = JSON.parse(fs.readFileSync(path.join(corpus, 'manifest.json'), 'utf8')) as Case[];

  it('agrees on at least 95% of the cases, and only ever throws OperationOutcomeError', () => {
    const disagreements: string[] = [];
    const unexpectedThrows: string[] = [];
    let agreements = 0;
    for (const c of cases) {
      const text = fs.readFileSync(path.join(corpus, c.file), 'utf8');
      let invalid: boolean;
      let found: string;
      try {
        const issues = validator.validate(parseFhirJson(text));
        const errors = issues.filter((i) => i.severity === 'error' || i.severity === 'fatal');
        invalid = errors.length > 0;
        found = errors.map((i) => `${i.expression?.[0]}: ${i.diagnostics}`).join(' | ');
      } catch (err) {
        if (!(err instanceof OperationOutcomeError)) {
          unexpectedThrows.push(`${c.name}: ${String(err)}`);
        }
        invalid = true;
        found = `threw ${(err as Error).message}`;
      }
      if (invalid === (c.expect === 'invalid')) {
        agreements++;
      } else {
        disagreements.push(`${c.name}: expected ${c.expect}; java: ${c.javaErrors.join(' | ') || '(no errors)'}; ours: ${found || '(no errors)'}`);
      }
    }
    if (disagreements.length > 0) {
      console.log(`Disagreements with the reference validator (${disagreements.length}):\n${disagreements.join('\n')}`);
    }
    expect(unexpectedThrows).toEqual([]);
    expect(cases).toHaveLength(71);
    expect(agreements).toBeGreaterThanOrEqual(68);
  });

  it('rejects every malformed JSON case in the parser with a 400 structure outcome', () => {
    for (const c of cases.filter((x) => x.malformedJson)) {
      const text = fs.readFileSync(path.join(corpus, c.file), 'utf8');
      let error: unknown;
      try {
        parseFhirJson(text);
      } catch (err) {
        error = err;
      }
      expect(error).toBeInstanceOf(OperationOutcomeError);
      expect((error as OperationOutcomeError).status).toBe(400);
      expect((error as OperationOutcomeError).outcome.issue?.[0]?.code).toBe('structure');
    }
  });
});
