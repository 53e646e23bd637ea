/** Shared by the patch tests: catching the OperationOutcomeError a client would see, and freezing inputs. */
import { OperationOutcomeError } from '../../../src/fhir/outcomes';

/** The error `fn` throws; fails the test if it returns or throws something else. */
export function failure(fn: () => unknown): OperationOutcomeError {
  try {
    fn();
  } catch (err) {
    if (err instanceof OperationOutcomeError) return err;
    throw err;
  }
  throw new Error('expected an OperationOutcomeError, but the call succeeded');
}

/** Status, issue code and diagnostics as a client sees them. */
export function seen(err: OperationOutcomeError): { status: number; code: string; diagnostics: string } {
  const issue = err.outcome.issue?.[0];
  return { status: err.status, code: issue?.code ?? '', diagnostics: issue?.diagnostics ?? '' };
}

/** Freezes a value all the way down, so that any attempt to mutate it throws. */
export function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}
