/**
 * The pages of the browser sign-in flow, one function each. Field names are stable (tests and the
 * browser e2e test drive them): login, password, otp, decision.
 */
import type { View } from '../authorize';
import { html, layout, type Html } from './html';
import { describeScope } from './scopes';

const hidden = (request: string, csrf: string, extra: Html | string = '') => html`
<input type="hidden" name="request" value="${request}">
<input type="hidden" name="csrf" value="${csrf}">${extra}`;

const errorBox = (error: string | undefined) => (error ? html`<p class="error" role="alert">${error}</p>` : '');

export function renderView(view: Exclude<View, { page: 'redirect' }>): string {
  switch (view.page) {
    case 'error':
      return layout('Não foi possível continuar', html`<h1>Não foi possível continuar</h1><p class="error" role="alert">${view.message}</p>`);
    case 'login':
      return layout(
        'Entrar',
        html`<h1>Entrar</h1>
<p class="note">${view.clientName} pede acesso à sua conta Health&amp;Med.</p>
${errorBox(view.error)}
<form method="post" action="/oauth2/authorize/login">${hidden(view.request, view.csrf)}
<label for="login">E-mail, CPF ou CRM</label>
<input id="login" name="login" type="text" autocomplete="username" autocapitalize="none" spellcheck="false" required autofocus>
<label for="password">Senha</label>
<input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit">Entrar</button>
</form>`,
      );
    case 'mfa':
      return layout(
        'Verificação em duas etapas',
        html`<h1>Verificação em duas etapas</h1>
<p>Digite o código de 6 dígitos do seu aplicativo autenticador, ou um código de recuperação.</p>
${errorBox(view.error)}
<form method="post" action="/oauth2/authorize/mfa">${hidden(view.request, view.csrf, html`<input type="hidden" name="stage" value="mfa">`)}
<label for="otp">Código</label>
<input id="otp" name="otp" type="text" inputmode="numeric" autocomplete="one-time-code" required autofocus>
<button type="submit">Continuar</button>
</form>`,
      );
    case 'enrol':
      return layout(
        'Configure a verificação em duas etapas',
        html`<h1>Configure a verificação em duas etapas</h1>
<p>Sua conta exige um segundo fator. Adicione esta chave ao seu aplicativo autenticador e digite o código que ele mostrar.</p>
${errorBox(view.error)}
<p class="secret">${view.secret}</p>
<p class="note"><a href="${view.uri}">Abrir no aplicativo autenticador</a></p>
<form method="post" action="/oauth2/authorize/mfa">${hidden(view.request, view.csrf, html`<input type="hidden" name="stage" value="enrol">`)}
<label for="otp">Código</label>
<input id="otp" name="otp" type="text" inputmode="numeric" autocomplete="one-time-code" required autofocus>
<button type="submit">Confirmar</button>
</form>`,
      );
    case 'consent':
      return layout(
        'Autorizar acesso',
        html`<h1>Autorizar acesso</h1>
<p><strong>${view.clientName}</strong> poderá:</p>
<ul class="scopes">${view.scopes.map((s) => html`<li>${describeScope(s)}</li>`)}</ul>
<form method="post" action="/oauth2/authorize/consent">${hidden(view.request, view.csrf)}
<button type="submit" name="decision" value="approve">Permitir</button>
<button type="submit" name="decision" value="deny" class="secondary">Recusar</button>
</form>`,
      );
  }
}

/** The password reset page a reset e-mail links to. */
export function resetPage(token: string, message?: { error?: string; done?: boolean }): string {
  if (message?.done) return layout('Senha alterada', html`<h1>Senha alterada</h1><p>Sua nova senha já vale. Volte ao aplicativo para entrar.</p>`);
  return layout(
    'Nova senha',
    html`<h1>Escolha uma nova senha</h1>
${errorBox(message?.error)}
<form method="post" action="/auth/password/reset">
<input type="hidden" name="token" value="${token}">
<label for="password">Nova senha (pelo menos 10 caracteres)</label>
<input id="password" name="password" type="password" autocomplete="new-password" minlength="10" required autofocus>
<button type="submit">Salvar</button>
</form>`,
  );
}
