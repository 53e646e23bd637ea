/**
 * One place for OperationOutcomes and the one error type thrown from anywhere.
 * https://hl7.org/fhir/R4/operationoutcome.html — issue codes: https://hl7.org/fhir/R4/valueset-issue-type.html
 * The HTTP layer maps an OperationOutcomeError to its status; nothing else decides statuses.
 */
import type { OperationOutcome, OperationOutcomeIssue } from '@medplum/fhirtypes';

export type IssueCode = OperationOutcomeIssue['code'];
export type IssueSeverity = OperationOutcomeIssue['severity'];

export class OperationOutcomeError extends Error {
  constructor(
    readonly status: number,
    readonly outcome: OperationOutcome,
    /** Extra response headers (e.g. ETag of a deleted resource, Retry-After). */
    readonly headers: Record<string, string> = {},
  ) {
    super(outcome.issue?.[0]?.diagnostics ?? outcome.issue?.[0]?.details?.text ?? 'FHIR error');
    this.name = 'OperationOutcomeError';
  }
}

export function outcome(
  severity: IssueSeverity,
  code: IssueCode,
  diagnostics: string,
  expression?: string | string[],
): OperationOutcome {
  const issue: OperationOutcomeIssue = { severity, code, diagnostics };
  if (expression !== undefined) {
    issue.expression = Array.isArray(expression) ? expression : [expression];
  }
  return { resourceType: 'OperationOutcome', issue: [issue] };
}

export function issuesOutcome(issues: OperationOutcomeIssue[]): OperationOutcome {
  return { resourceType: 'OperationOutcome', issue: issues };
}

function fail(status: number, code: IssueCode, diagnostics: string, expression?: string | string[]): OperationOutcomeError {
  return new OperationOutcomeError(status, outcome('error', code, diagnostics, expression));
}

export const allOk = (diagnostics = 'All OK'): OperationOutcome => outcome('information', 'informational', diagnostics);

export const badRequest = (diagnostics: string, expression?: string | string[]) =>
  fail(400, 'invalid', diagnostics, expression);
export const notSupported = (diagnostics: string) => fail(400, 'not-supported', diagnostics);
export const unauthorized = (diagnostics = 'Unauthorized') => fail(401, 'login', diagnostics);
export const forbidden = (diagnostics = 'Forbidden') => fail(403, 'forbidden', diagnostics);
export const notFound = (diagnostics = 'Not found') => fail(404, 'not-found', diagnostics);
export const methodNotAllowed = (diagnostics: string) => fail(405, 'not-supported', diagnostics);
export const notAcceptable = (diagnostics: string) => fail(406, 'not-supported', diagnostics);
export const conflict = (diagnostics: string, code: IssueCode = 'conflict') => fail(409, code, diagnostics);
export const gone = (diagnostics: string) => fail(410, 'deleted', diagnostics);
export const preconditionFailed = (diagnostics: string, code: IssueCode = 'conflict') =>
  fail(412, code, diagnostics);
export const tooLarge = (diagnostics: string) => fail(413, 'too-costly', diagnostics);
export const unsupportedMediaType = (diagnostics: string) => fail(415, 'not-supported', diagnostics);
export const unprocessable = (diagnostics: string, expression?: string | string[]) =>
  fail(422, 'processing', diagnostics, expression);
export const tooManyRequests = (diagnostics: string) => fail(429, 'throttled', diagnostics);
export const serverError = (diagnostics = 'Internal server error') => fail(500, 'exception', diagnostics);

/** True when an OperationOutcome reports an error or fatal issue. */
export function hasErrors(oo: OperationOutcome): boolean {
  return (oo.issue ?? []).some((i) => i.severity === 'error' || i.severity === 'fatal');
}
