/**
 * Collects OperationOutcome issues while validating, remembering which rule set each error came from:
 * the base specification (malformed content: HTTP 400) or a profile / business rule (HTTP 422).
 * Issue codes: https://hl7.org/fhir/R4/valueset-issue-type.html
 */
import type { OperationOutcomeIssue } from '@medplum/fhirtypes';
import type { IssueCode } from '../outcomes';

/** base: the R4 specification itself; profile: a StructureDefinition constraint; rule: CPF/CRM identifiers. */
export type RuleSet = 'base' | 'profile' | 'rule';

export class IssueCollector {
  readonly issues: OperationOutcomeIssue[] = [];
  readonly errorCounts: Record<RuleSet, number> = { base: 0, profile: 0, rule: 0 };

  error(ruleSet: RuleSet, code: IssueCode, diagnostics: string, expression: string): void {
    this.errorCounts[ruleSet]++;
    this.issues.push({ severity: 'error', code, diagnostics, expression: [expression] });
  }

  warning(code: IssueCode, diagnostics: string, expression: string): void {
    this.issues.push({ severity: 'warning', code, diagnostics, expression: [expression] });
  }

  get hasErrors(): boolean {
    return this.errorCounts.base + this.errorCounts.profile + this.errorCounts.rule > 0;
  }
}
