/**
 * Plain-language descriptions of granted scopes for the approval page.
 */
import { parseScope } from '../../access/scopes';

const VERBS: Record<string, string> = { c: 'criar', r: 'ler', u: 'alterar', d: 'apagar', s: 'pesquisar' };
const OTHER: Record<string, string> = {
  openid: 'Confirmar a sua identidade',
  fhirUser: 'Saber qual é o seu cadastro (paciente ou profissional)',
  profile: 'Ver os dados básicos do seu perfil',
  'launch/patient': 'Abrir no contexto do seu cadastro de paciente',
  offline_access: 'Manter o acesso mesmo quando você não estiver usando o aplicativo',
  online_access: 'Manter o acesso enquanto você estiver usando o aplicativo',
};
const WHOSE: Record<string, string> = { patient: 'seus dados', user: 'dados que o seu perfil permite', system: 'dados do sistema' };

export function describeScope(scope: string): string {
  const parsed = parseScope(scope);
  if (!parsed) return scope;
  if (parsed.kind !== 'resource') return OTHER[parsed.raw] ?? parsed.raw;
  const verbs = ['c', 'r', 'u', 'd', 's'].filter((p) => parsed.permissions.has(p as never)).map((p) => VERBS[p]);
  const what = parsed.resourceType === '*' ? 'todos os tipos de registro' : `registros ${parsed.resourceType}`;
  const list = verbs.length > 1 ? `${verbs.slice(0, -1).join(', ')} e ${verbs[verbs.length - 1]}` : verbs[0];
  const capital = list.charAt(0).toUpperCase() + list.slice(1);
  const constraint = parsed.constraints.length ? ` (somente ${parsed.constraints.map((c) => `${c.code}=${c.values.join(',')}`).join(', ')})` : '';
  return `${capital} ${what}${constraint}: ${WHOSE[parsed.context]}`;
}
