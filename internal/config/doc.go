// Package config loads, validates, diffs and watches hawk's configuration.
//
// # Sources
//
// A Loader layers, lowest first: the keys' defaults (those of the keys table, which the
// embedded defaults.yaml shows with what every key does; see DefaultsYAML) < a YAML file < HAWK_* environment variables < the command-line flags
// that were explicitly set (RegisterFlags defines one per key, named as the key). Each
// Load builds a fresh koanf instance, so a key removed from the file falls back to its
// default on the next reload.
//
// Keys are checked strictly: an unknown key in the file, an unknown HAWK_ variable, a
// value of the wrong type or an invalid value is reported, all at once, in a
// *ValidationError naming every key ("config: heartbeat.interval: invalid duration
// \"ten\" (env HAWK_HEARTBEAT_INTERVAL); spool.fsync: must be never or always, not
// \"sometimes\" (file /etc/hawk.yaml)"). A null value in the file ("listen:") leaves the
// key unset there; a section whose keys are all commented out is fine.
//
// Environment names are HAWK_ + the key upper-cased with '.' → '_', matched against the
// known keys (so HAWK_SERVER_ID is server_id and HAWK_LIMITS_MAX_CONNS is
// limits.max_conns). Lists (auth.tokens) are comma separated in the environment and in
// flags. Durations are Go durations ("10s"); sizes are bytes or integers with a unit
// (ParseSize: "64MiB", "16MB").
//
// # Keys
//
// Keys returns every key with its default, doc and reload class; this table and
// defaults.yaml are generated from it (go generate).
//
//	key                         default                              reload
//	listen                      127.0.0.1:7373                       restart-only
//	listen_proxy_from           "" (none)                            restart-only
//	server_id                   "" (hostname)                        restart-only
//	log.level                   info (debug, info, warn, error)      live
//	log.format                  console (console, json)              restart-only
//	auth.credentials            [] (none)                            live; removed credentials and ids no longer covered close their connections
//	auth.tokens_file            "" (none)                            live; the file's contents reload live
//	auth.tokens                 [] (unbound: use auth.credentials)   live; removed tokens close their connections
//	auth.open                   false (open server: loopback only)   live (new connections)
//	heartbeat.interval          10s                                  live (new connections)
//	heartbeat.timeout           0s = 3 × interval                    live
//	handshake.timeout           5s                                   live
//	tls.cert_file               "" (plaintext)                       restart-only (contents reload live)
//	tls.key_file                "" (plaintext)                       restart-only (contents reload live)
//	tls.min_version             1.2 (1.2, 1.3)                       restart-only
//	tls.client_ca_file          "" (no client certificates)          restart-only (contents reload live)
//	tls.client_auth             required (none, optional, required)  restart-only
//	tls.client_id_from          uri_san (uri_san, dns_san, cn)       live (new connections)
//	tls.expiry_goaway           10m                                  live (new connections)
//	tls.ticket_keys_file        "" (keys of hawk's own)              restart-only (contents reload live)
//	tls.ticket_key_rotation     24h                                  restart-only
//	tls.ticket_keys_previous    6                                    restart-only
//	limits.max_conns            100000                               live (existing connections stay)
//	limits.handshake_rate       5000 (0: unlimited)                  live
//	limits.max_frame_size       1MiB (64 B – 64 MiB)                 live (new connections)
//	limits.max_in_flight        1024 (1 – 65535)                     live (new connections)
//	limits.write_timeout        10s                                  live
//	limits.frame_timeout        30s                                  live
//	destination                 spool (spool, jetstream)             restart-only
//	spool.dir                   ./data                               restart-only
//	spool.fsync                 never (never, always)                live
//	spool.segment_size          64MiB                                live
//	spool.max_bytes             0 (no limit)                         live
//	spool.max_age               0s (no limit)                        live
//	spool.cache_bytes           256MiB (0: left to the kernel)       live
//	spool.discard               new (new, old)                       restart-only
//	spool.file_mode             0640                                 restart-only
//	jetstream.urls              nats://127.0.0.1:4222                restart-only
//	jetstream.stream            HAWK_REPORTS                         restart-only
//	jetstream.subject           hawk.reports.<client_id>             restart-only
//	jetstream.creds             "" (none)                            restart-only
//	jetstream.tls_ca            "" (system)                          restart-only
//	jetstream.tls_cert          "" (none)                            restart-only
//	jetstream.tls_key           "" (none)                            restart-only
//	jetstream.max_pending       16384                                restart-only
//	jetstream.publish_timeout   5s                                   restart-only
//	jetstream.connect_timeout   5s                                   restart-only
//	jetstream.retry_after       1s                                   restart-only
//	jetstream.retry_horizon     2m                                   restart-only
//	jetstream.require_durable   true                                 restart-only
//	jetstream.sync_always       false                                restart-only
//	jetstream.mode              direct (direct, spooled)             restart-only
//	dedup.window                4096 (power of two)                  restart-only
//	dedup.max_clients           200000                               live (from the next new client)
//	dedup.rebuild_bytes         256MiB                               restart-only
//	dedup.rebuild_before_ready  false                                restart-only
//	drain.timeout               30s                                  live
//	drain.spread                5s (≤ drain.timeout)                 live
//	upgrade.pid_file            "" (none)                            restart-only
//	upgrade.timeout             60s                                  restart-only
//	upgrade.handoff             true                                 live
//	upgrade.handoff_timeout     5s                                   live
//	admin.addr                  127.0.0.1:7374 ("" disables)         restart-only
//	admin.pprof                 false                                live
//	control.socket              "" ("" disables)                     restart-only
//	control.mode                0600                                 restart-only
//	legacy.listeners            [] (none)                            restart-only; allow, idle_timeout, max_frame_size: live
//	udp.listeners               [] (none)                            restart-only; allow, reply, max_pending: live
//	uploads.enabled             false                                restart-only
//	uploads.dir                 "" (<spool.dir>/uploads)             restart-only
//	uploads.max_file_size       8GiB                                 restart-only
//	uploads.client_quota        16GiB                                restart-only
//	uploads.total_quota         64GiB                                restart-only
//	uploads.expiry              24h                                  restart-only
//	uploads.max_in_flight       4MiB                                 restart-only
//	uploads.bucket              HAWK_FILES ("" keeps files local)    restart-only
//	uploads.bucket_replicas     3                                    restart-only
//	uploads.bucket_max_bytes    0 (no limit)                         restart-only
//	uploads.bucket_ttl          0s (never)                           restart-only
//
// # Reload
//
// A Config is immutable; a Holder publishes the one in force. Prepare is the reload
// step: it loads a candidate, validates it and diffs it against the running config,
// and refuses it (naming every key) if anything is invalid or a restart-only key
// changed. Watch calls a function, debounced, whenever the file changes on disk, through
// editor renames, ConfigMap symlink swaps and deletions.
//
// Secrets (auth.tokens) never appear in Redacted, in a Change or in an error.
package config
