/**
 * The sign-in pages' one stylesheet, served as a file at STYLESHEET_PATH (the CSP allows styles from 'self'
 * only). Mobile first: one column, large touch targets, system fonts.
 */
export const STYLESHEET_PATH = '/auth/static/auth.css';

export const STYLESHEET = `*{box-sizing:border-box}
html{-webkit-text-size-adjust:100%}
body{margin:0;min-height:100vh;display:flex;align-items:flex-start;justify-content:center;background:#eef3f7;color:#1c2733;
font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
.card{width:100%;max-width:26rem;margin:0;padding:1.5rem 1.25rem;background:#fff;min-height:100vh}
@media (min-width:30rem){.card{margin:3rem 1rem;min-height:0;border-radius:12px;box-shadow:0 2px 12px rgba(0,0,0,.08);padding:2rem}}
.brand{margin:0 0 1rem;font-weight:700;color:#0b6e69;letter-spacing:.02em}
h1{font-size:1.35rem;margin:0 0 1rem}
p{margin:0 0 1rem}
label{display:block;font-weight:600;margin:1rem 0 .35rem}
input[type=text],input[type=password],input[type=email]{width:100%;padding:.8rem .9rem;font-size:1rem;border:1px solid #9aa9b7;border-radius:8px;background:#fff;color:inherit}
input:focus,button:focus{outline:3px solid #7cc4bf;outline-offset:1px}
button{display:block;width:100%;margin-top:1.25rem;padding:.85rem 1rem;font-size:1rem;font-weight:600;border:0;border-radius:8px;background:#0b6e69;color:#fff;cursor:pointer}
button.secondary{background:#fff;color:#0b6e69;border:1px solid #0b6e69;margin-top:.75rem}
.error{padding:.75rem .9rem;border-radius:8px;background:#fdecea;color:#8a1c12;border:1px solid #f5c2bd}
.note{font-size:.9rem;color:#4a5a69}
.secret{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;word-break:break-all;background:#f3f6f8;padding:.6rem .75rem;border-radius:6px}
ul.scopes{padding-left:1.2rem;margin:0 0 1rem}
ul.scopes li{margin:.25rem 0}
a{color:#0b6e69}
`;
