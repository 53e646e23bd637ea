/**
 * The two patch formats of the patch interaction, as pure functions from (resource, patch) to a new
 * resource. https://hl7.org/fhir/R4/http.html#patch
 */
export { applyJsonPatch } from './jsonPatch';
export { applyFhirPathPatch } from './fhirPathPatch';
