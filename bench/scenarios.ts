/**
 * What we measure. Each scenario says how to make its next request against either server; run.ts runs
 * every scenario at every connection count on both. Add a scenario by appending to `scenarios`.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { patient } from './patients';

/** One of the two servers, as a scenario sees it. */
export interface Target {
  name: 'ours' | 'baseline';
  origin: string;
  /** Where Patients live: `/fhir/Patient` for ours, `/Patient` for the baseline. */
  patientPath: string;
}

/** What the load left for scenarios to use. */
export interface BenchData {
  patientIds: string[];
}

export interface RequestSpec {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  path: string;
  headers?: IncomingHttpHeaders;
  body?: string;
}

export interface Scenario {
  name: string;
  /** The lowest acceptable ours/baseline throughput ratio. */
  target: number;
  /** Status a correct answer has; a probe request checks it before measuring. */
  expectStatus: number;
  /** A request generator for one measurement; called once per request. */
  requests(target: Target, data: BenchData): () => RequestSpec;
}

const FHIR_JSON = 'application/fhir+json';

/** Creates never repeat a CPF within a run, whichever server they go to. */
let createSerial = 0;

export const scenarios: Scenario[] = [
  {
    name: 'read',
    target: 0.6,
    expectStatus: 200,
    requests(target, data) {
      const ids = data.patientIds;
      let i = Math.floor(Math.random() * ids.length);
      return () => ({
        method: 'GET',
        path: `${target.patientPath}/${ids[i++ % ids.length]}`,
        headers: { accept: FHIR_JSON },
      });
    },
  },
  {
    name: 'create',
    target: 0.4,
    expectStatus: 201,
    requests(target) {
      return () => ({
        method: 'POST',
        path: target.patientPath,
        headers: { 'content-type': FHIR_JSON, accept: FHIR_JSON },
        body: JSON.stringify(patient(createSerial++, 1)),
      });
    },
  },
];
