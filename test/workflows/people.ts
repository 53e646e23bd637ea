/**
 * The people of the scheduling tests, signed up and signed in over HTTP: a practitioner with `user/*.cruds`
 * (their CRM login) and a patient with the app's patient scopes (their e-mail login).
 */
import type { TestServer } from '../helpers/server';
import { PATIENT_SCOPE, signUp, signUpPractitioner, tokensFor } from '../auth/helpers';

export interface Doctor {
  practitioner: string;
  token: string;
  email: string;
  crm: string;
}

export interface PatientUser {
  patient: string;
  token: string;
  email: string;
}

export async function doctorWithToken(s: TestServer, adminToken: string): Promise<Doctor> {
  const dr = await signUpPractitioner(s, adminToken);
  return { practitioner: dr.practitioner, email: dr.email, crm: dr.crm, token: (await tokensFor(s, dr.crm, 'openid fhirUser user/*.cruds')).access_token };
}

export async function patientWithToken(s: TestServer): Promise<PatientUser> {
  const p = await signUp(s);
  return { patient: p.patient, email: p.email, token: (await tokensFor(s, p.email, PATIENT_SCOPE)).access_token };
}
