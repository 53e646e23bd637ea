import { loadDefinitions } from '../src/fhir/definitions';
import { tokenRows } from '../src/storage/indexer';
import { loadValidator } from '../src/fhir/validation';
import { parseFhirJson } from '../src/fhir/validation/json';
import { patient } from '../bench/patients';
loadDefinitions();
const v = loadValidator('fhir-profiles');
const p = patient(1, 1) as any;
const text = JSON.stringify(p);
function time(name: string, fn: () => void, n = 5000) { for (let i=0;i<500;i++) fn(); const t = performance.now(); for (let i=0;i<n;i++) fn(); console.log(name, ((performance.now()-t)/n*1000).toFixed(1), 'us'); }
time('parse', () => parseFhirJson(text));
time('validate', () => v.assertValid(p));
time('tokens', () => tokenRows(p));
console.log(tokenRows(p).length, text.length);
