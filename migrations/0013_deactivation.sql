-- Account deactivation (LGPD; issue 13): a deactivated account signs in no more and its tokens are revoked; the
-- clinical record is kept (Lei 13.787/2018) and an administrator can reactivate the account.
ALTER TABLE auth_users ADD COLUMN deactivated_at timestamptz;
