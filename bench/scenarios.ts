/**
 * What we measure. Each scenario says how to make its next request against either server; run.ts runs
 * every scenario at every connection count on both. Add a scenario by appending to `scenarios`.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { BookingData } from './booking';
import type { ConsentData } from './consent';
import { patient } from './patients';
import type { SearchData } from './search/load';
import { searchScenarios } from './search/scenarios';

/** One of the two servers, as a scenario sees it. */
export interface Target {
  name: 'ours' | 'baseline';
  origin: string;
  /** Where Patients live: `/fhir/Patient` for ours, `/Patient` for the baseline. */
  patientPath: string;
  /** Sent with every request (our server's Authorization when it requires a token). */
  headers: Record<string, string>;
  /** Prefix of search URLs: `/fhir` for ours, `` for the baseline (which answers the same query strings). */
  fhirPath: string;
}

/** What the load left for scenarios to use. */
export interface BenchData {
  /** A signed-up patient and their own token (scenarios with versus: 'system-token'). */
  patientUser?: { patientId: string; headers: Record<string, string> };
  /** Patients of the read benchmark (empty when no selected scenario needs them). */
  patientIds: string[];
  /** The scheduling data set of the search benchmark (absent when no search scenario is selected). */
  search?: SearchData;
  /** The free Slots and the patient of the booking benchmark. */
  booking?: BookingData;
  /** The shared documents and both tokens of the consent benchmark. */
  consent?: ConsentData;
}

/** Which data set a scenario needs loaded. */
export type DataSet = 'patients' | 'search' | 'booking' | 'consent' | 'none';

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
  /**
   * The highest acceptable p95 latency of ours, in ms (none: not a target), judged at a fixed rate below
   * saturation (--latency-load); a scenario with one gets that extra run.
   */
  p95TargetMs?: number;
  needs: DataSet;
  /** A search whose results --verify/--explain compare between the two servers. */
  search?: boolean;
  /** Status a correct answer has; a probe request checks it before measuring. */
  expectStatus: number;
  /**
   * What ours is compared with: the baseline (default), or ours itself with the system token — for
   * authorization's cost, where "ours" then sends a patient's token (issue 4); or, for consent-search, ours with
   * the patient's own token, where "ours" sends the token of the doctor the patient shared with (issue 13).
   */
  versus?: 'baseline' | 'system-token' | 'patient-token';
  /** A request generator for one measurement; called once per request. */
  requests(target: Target, data: BenchData): () => RequestSpec;
}

const FHIR_JSON = 'application/fhir+json';

/** Creates never repeat a CPF within a run, whichever server they go to. */
let createSerial = 0;

const basic: Scenario[] = [
  {
    // Authorization must not halve throughput: a patient reading their own Patient vs the system token.
    name: 'read-patient-token',
    target: 0.8,
    needs: 'none',
    versus: 'system-token',
    expectStatus: 200,
    requests(_target, data) {
      const id = data.patientUser!.patientId;
      return () => ({ method: 'GET', path: `/fhir/Patient/${id}`, headers: { accept: FHIR_JSON } });
    },
  },
  {
    name: 'read',
    target: 0.6,
    needs: 'patients',
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
    needs: 'none',
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

/**
 * Booking (issue 12): patients book the next free Slot of their doctor (16 doctors, each with a patient), with
 * their own tokens, against a few lines of Koa + pg running the same transaction by hand (lock the Slot, insert
 * the Appointment, mark the Slot, insert one outbox row). Every request takes a Slot no request took before.
 */
const booking: Scenario = {
  name: 'booking',
  target: 0.4,
  needs: 'booking',
  expectStatus: 201,
  requests(target, data) {
    const b = data.booking!;
    let next = target.name === 'ours' ? oursBooked : baselineBooked;
    return () => {
      const n = next++;
      if (target.name === 'ours') oursBooked = next;
      else baselineBooked = next;
      // Booking n: pair n % P books that doctor's next Slot
      const pair = b.pairs[n % b.pairs.length];
      const slot = target.name === 'ours' ? pair.slotIds[Math.floor(n / b.pairs.length) % pair.slotIds.length] : `b${n}`;
      const body = {
        resourceType: 'Appointment',
        status: 'pending',
        slot: [{ reference: `Slot/${slot}` }],
        participant: [
          { actor: { reference: `Patient/${pair.patient.patientId}` }, status: 'accepted' },
          { actor: { reference: pair.practitioner }, status: 'needs-action' },
        ],
      };
      const auth = target.name === 'ours' ? pair.patient.headers : {};
      return { method: 'POST', path: `${target.fhirPath}/Appointment`, headers: { 'content-type': FHIR_JSON, accept: FHIR_JSON, ...auth }, body: JSON.stringify(body) };
    };
  },
};
/**
 * Sharing by Consent (issue 13): a doctor's search of a patient's lab documents, which the patient shared with them
 * by category, against the same search by the patient. Target 0.5.
 */
const consentSearch: Scenario = {
  name: 'consent-search',
  target: 0.5,
  needs: 'consent',
  versus: 'patient-token',
  expectStatus: 200,
  requests(_target, data) {
    const path = data.consent!.path;
    return () => ({ method: 'GET', path, headers: { accept: FHIR_JSON } });
  },
};

/** Slots taken so far by each side, across measurements (a Slot is booked once). */
let oursBooked = 0;
let baselineBooked = 0;

/**
 * Every scenario, in the order they run: the reads, the searches of issue 3, and create last. A create run
 * adds tens of thousands of Patients (and their index rows), whose autovacuum and ANALYZE would otherwise run
 * during the next scenario's measurement of whichever server goes first, and which would change the search
 * data set.
 */
export const scenarios: Scenario[] = [
  ...basic.filter((s) => s.name !== 'create'),
  ...searchScenarios,
  consentSearch,
  booking,
  ...basic.filter((s) => s.name === 'create'),
];
