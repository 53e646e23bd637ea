/** Strict FHIR JSON: https://hl7.org/fhir/R4/json.html */
import { OperationOutcomeError } from '../../../src/fhir/outcomes';
import { parseFhirJson } from '../../../src/fhir/validation/json';

function parseError(text: string): OperationOutcomeError {
  try {
    parseFhirJson(text);
  } catch (err) {
    if (err instanceof OperationOutcomeError) {
      return err;
    }
    throw err;
  }
  throw new Error('expected parseFhirJson to throw');
}

describe('parseFhirJson', () => {
  it('parses FHIR JSON', () => {
    expect(parseFhirJson('{"resourceType":"Patient","active":true,"name":[{"given":["Ana"]}]}')).toEqual({
      resourceType: 'Patient',
      active: true,
      name: [{ given: ['Ana'] }],
    });
  });

  it('tolerates a leading UTF-8 byte order mark', () => {
    expect(parseFhirJson('\uFEFF{"resourceType":"Patient"}')).toEqual({ resourceType: 'Patient' });
  });

  it('accepts escapes, unicode and numbers in every JSON form', () => {
    expect(parseFhirJson('{"a":"S\\u00e3o \\"Paulo\\"\\n","b":-1.5e3,"c":[0,null,false],"d":"ção"}')).toEqual({
      a: 'São "Paulo"\n',
      b: -1500,
      c: [0, null, false],
      d: 'ção',
    });
  });

  it.each([
    ['a syntax error', '{"resourceType":"Patient",}', /extra comma at the end of the object/],
    ['a trailing comma in an array', '{"a":[1,2,]}', /extra comma at the end of the array/],
    ['a missing comma', '{"a":1 "b":2}', /comma is missing/],
    ['a line comment', '{\n  // note\n  "a":1}', /comments are not allowed.*line 2, column 3/],
    ['a block comment', '{"a":/* x */1}', /comments are not allowed/],
    ['an unquoted property name', '{resourceType:"Patient"}', /property name 'resourceType' has no quotes/],
    ['an unquoted value', '{"gender":male}', /value 'male' has no quotes/],
    ['a duplicate property name', '{"resourceType":"Patient","id":"a","id":"b"}', /duplicate property name 'id'/],
    ['a duplicate in a nested object', '{"name":[{"family":"A","family":"B"}]}', /duplicate property name 'family'/],
    ['a wrong closing bracket', '{"a":[1}', /unexpected '}', ']' expected/],
    ['truncated input', '{"a":', /unexpected end of input/],
    ['content after the value', '{"a":1} {"b":2}', /after the end of the JSON value/],
    ['an empty body', '', /end of input/],
    ['single quotes', "{'a':1}", /quoted property name was expected/],
  ])('rejects %s with 400 structure', (_label, text, message) => {
    const err = parseError(text);
    expect(err.status).toBe(400);
    expect(err.outcome.issue?.[0]).toMatchObject({ severity: 'error', code: 'structure' });
    expect(err.outcome.issue?.[0]?.diagnostics).toMatch(message);
  });

  it('allows the same property name in different objects', () => {
    expect(parseFhirJson('{"a":{"id":"1"},"b":{"id":"2"},"c":[{"id":"3"},{"id":"4"}]}')).toBeTruthy();
  });

  it('refuses absurd nesting without overflowing the stack', () => {
    const deep = '['.repeat(100000) + ']'.repeat(100000);
    expect(parseError(deep).status).toBe(400);
  });
});
