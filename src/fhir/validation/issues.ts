/**
 * Collects OperationOutcome issues while validating, remembering which rule set each error came from:
 * the base specification (malformed content: HTTP 400) or a profile / business rule (HTTP 422).
 * Issue codes: https://hl7.org/fhir/R4/valueset-issue-type.html
 */
import type { OperationOutcomeIssue } from '@medplum/fhirtypes';
import type { IssueCode } from '../outcomes';

/** base: the R4 specification itself; profile: a StructureDefinition constraint; rule: CPF/CRM identifiers. */
export type RuleSet = 'base' | 'profile' | 'rule';

/**
 * An OperationOutcome lists at most this many issues; the rest are counted in a last one. A body of a million
 * bad extensions gets a short answer, not one a hundred times its size.
 */
export const MAX_ISSUES = 100;

export class IssueCollector {
  private readonly listed: OperationOutcomeIssue[] = [];
  private omitted = { errors: 0, warnings: 0 };
  readonly errorCounts: Record<RuleSet, number> = { base: 0, profile: 0, rule: 0 };

  error(ruleSet: RuleSet, code: IssueCode, diagnostics: string, expression: string): void {
    this.errorCounts[ruleSet]++;
    if (this.listed.length < MAX_ISSUES) {
      this.listed.push({ severity: 'error', code, diagnostics, expression: [expression] });
    } else {
      this.omitted.errors++;
    }
  }

  warning(code: IssueCode, diagnostics: string, expression: string): void {
    if (this.listed.length < MAX_ISSUES) {
      this.listed.push({ severity: 'warning', code, diagnostics, expression: [expression] });
    } else {
      this.omitted.warnings++;
    }
  }

  /** The issues found: the first MAX_ISSUES, then one that counts those not listed. */
  get issues(): OperationOutcomeIssue[] {
    const { errors, warnings } = this.omitted;
    if (errors + warnings === 0) {
      return this.listed;
    }
    return [
      ...this.listed,
      {
        severity: errors > 0 ? 'error' : 'warning',
        code: 'too-costly',
        diagnostics: `${errors + warnings} more issue(s) not listed (${errors} error(s), ${warnings} warning(s)): only the first ${MAX_ISSUES} are`,
      },
    ];
  }

  get hasErrors(): boolean {
    return this.errorCounts.base + this.errorCounts.profile + this.errorCounts.rule > 0;
  }
}
