/**
 * One attachments master key for every server a test run starts, in this process and in the servers it spawns
 * (they inherit process.env): servers sharing a database must share its master key, since the token signing
 * keys in the database are wrapped under it (src/auth/keys.ts). A test of another key passes its own.
 */
process.env.LOCAL_MASTER_KEY ||= Buffer.alloc(32, 0x5a).toString('base64');
