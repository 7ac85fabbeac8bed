package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"

	"socialhub/connectors"
	"socialhub/internal/attest"
	"socialhub/internal/config"
	"socialhub/internal/event"
	"socialhub/internal/hub"
	"socialhub/internal/pseudonym"
	"socialhub/internal/store"
)

// Doctor's verdicts.
const (
	doctorOK   = "ok"
	doctorWarn = "warn" // works, but probably not what the operator wants
	doctorFail = "fail" // the hub will not work (or not fully) until it is fixed
	doctorSkip = "skip" // not checked: embedded service, or an earlier check failed
)

// doctorCheck is one finding: what was checked, the verdict, and in plain words what is wrong and
// what to do about it.
type doctorCheck struct {
	Area    string `json:"area"`
	Name    string `json:"name"`
	Status  string `json:"status"`
	Message string `json:"message"`
	Fix     string `json:"fix,omitempty"`
}

type doctorReport struct {
	OK     bool          `json:"ok"`
	Checks []doctorCheck `json:"checks"`
}

func (r *doctorReport) add(area, name, status, msg, fix string) {
	r.Checks = append(r.Checks, doctorCheck{Area: area, Name: name, Status: status, Message: msg, Fix: fix})
}

func (r *doctorReport) failures() int {
	n := 0
	for _, c := range r.Checks {
		if c.Status == doctorFail {
			n++
		}
	}
	return n
}

// errDoctor is returned when a check failed, so the exit code says so.
var errDoctor = errors.New("doctor found problems")

func cmdDoctor(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	fs := flag.NewFlagSet("socialhub doctor", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c commonFlags
	c.register(fs)
	asJSON := fs.Bool("json", false, "print the findings as JSON")
	timeout := fs.Duration("timeout", 10*time.Second, "how long each connection may take")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: socialhub doctor [flags]\n\n"+
			"Checks what the hub needs before it starts: the configuration, the sources' secrets, every\n"+
			"Kafka broker (TLS and SASL as configured), the topics (exist, partitions, compaction, record\n"+
			"size), PostgreSQL (connection, version, migrations, rights). Says what is wrong and what to do;\n"+
			"exits with 1 when something must be fixed.\n\nFlags:")
		fs.PrintDefaults()
	}
	if err := parse(fs, args); err != nil {
		return err
	}
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	cfg, err := config.Load(c.config, getenv)
	if err != nil {
		return err
	}
	if c.dataDir != "" {
		cfg.DataDir = c.dataDir
	}
	rep := &doctorReport{}
	doctorConfig(rep, cfg, getenv)
	doctorPostgres(ctx, rep, cfg, *timeout)
	doctorKafka(ctx, rep, cfg, *timeout)
	rep.OK = rep.failures() == 0

	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetEscapeHTML(false)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else {
		for _, ch := range rep.Checks {
			fmt.Fprintf(stdout, "%-4s  %-10s %s: %s\n", strings.ToUpper(ch.Status), ch.Area, ch.Name, ch.Message)
			if ch.Fix != "" {
				fmt.Fprintf(stdout, "      %-10s → %s\n", "", ch.Fix)
			}
		}
		if rep.OK {
			fmt.Fprintln(stdout, "\nall checks passed")
		} else {
			fmt.Fprintf(stdout, "\n%d check(s) failed\n", rep.failures())
		}
	}
	if !rep.OK {
		return fmt.Errorf("%w: %d check(s) failed", errDoctor, rep.failures())
	}
	return nil
}

// doctorConfig validates the configuration and builds every enabled source as the hub does at
// start, which checks their options and that the secrets they name are set.
func doctorConfig(rep *doctorReport, cfg config.Config, getenv func(string) string) {
	if err := cfg.Validate(); err != nil {
		for _, e := range unjoin(err) {
			rep.add("config", "validate", doctorFail, e.Error(), "correct the field in the configuration file (see socialhub.example.yaml)")
		}
	} else {
		rep.add("config", "validate", doctorOK, fmt.Sprintf("configuration is valid; roles: %s", strings.Join(cfg.RoleNames(), ",")), "")
	}
	registry := kinds()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, s := range cfg.Sources {
		name := "source " + s.Name
		if _, ok := registry.Kind(s.Kind); !ok {
			rep.add("sources", name, doctorFail, fmt.Sprintf("unknown kind %q", s.Kind), "use one of the kinds `socialhub sources` lists")
			continue
		}
		if s.Disabled {
			rep.add("sources", name, doctorSkip, "disabled", "")
			continue
		}
		if _, err := registry.New(s, connectors.Deps{Logger: quiet, DataDir: cfg.DataDir, Getenv: getenv}); err != nil {
			rep.add("sources", name, doctorFail, err.Error(), "set the variable the source names, or correct its options")
			continue
		}
		rep.add("sources", name, doctorOK, "options and secrets are in place", "")
	}
	if _, err := pseudonym.FromEnv(getenv); err != nil {
		rep.add("secrets", pseudonym.EnvKey, doctorWarn, "not usable: lookups accept pseudonyms only, not national ids ("+err.Error()+")",
			"set "+pseudonym.EnvKey+" to the key the residents' pseudonyms were made with")
	} else {
		rep.add("secrets", pseudonym.EnvKey, doctorOK, "set", "")
	}
	switch {
	case strings.TrimSpace(getenv(attest.EnvMasterKey)) != "":
		rep.add("secrets", attest.EnvMasterKey, doctorOK, "set", "")
	case cfg.DatabaseURL != "":
		rep.add("secrets", attest.EnvMasterKey, doctorWarn,
			"not set: each process keeps its own master key in its data directory, so processes cannot read each other's signing keys",
			"set "+attest.EnvMasterKey+" (openssl rand -hex 32) to the same value on every process")
	default:
		rep.add("secrets", attest.EnvMasterKey, doctorOK, "not set: the single process keeps its key in data_dir/attest.key", "")
	}
}

func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// doctorPostgres connects, reads the server's version, and compares the migrations this binary
// embeds with those applied; with some pending it checks the user may create tables.
func doctorPostgres(ctx context.Context, rep *doctorReport, cfg config.Config, timeout time.Duration) {
	if cfg.DatabaseURL == "" {
		rep.add("postgres", "connect", doctorSkip, "no DATABASE_URL: `socialhub run` starts its own cluster in data_dir/postgres", "")
		return
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	pool, err := store.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		rep.add("postgres", "connect", doctorFail, err.Error(),
			"check DATABASE_URL (host, port, user, password, database, sslmode) and that the server accepts this host")
		return
	}
	defer pool.Close()
	var serverVersion, user, db string
	if err := pool.QueryRow(ctx, `SELECT current_setting('server_version'), current_user, current_database()`).Scan(&serverVersion, &user, &db); err != nil {
		rep.add("postgres", "connect", doctorFail, err.Error(), "check the server's logs")
		return
	}
	rep.add("postgres", "connect", doctorOK, fmt.Sprintf("PostgreSQL %s, database %s as %s", serverVersion, db, user), "")
	if major, _ := strconv.Atoi(strings.SplitN(serverVersion, ".", 2)[0]); major > 0 && major < 14 {
		rep.add("postgres", "version", doctorWarn, fmt.Sprintf("PostgreSQL %s is older than the tested 14+", serverVersion), "upgrade the server")
	}
	st, err := store.Status(ctx, pool, hub.Migrations()...)
	if err != nil {
		rep.add("postgres", "migrations", doctorFail, err.Error(), "")
		return
	}
	for _, u := range st.Unknown {
		rep.add("postgres", "migrations", doctorFail,
			fmt.Sprintf("the database has migration %s/%03d_%s, which this binary (%s) does not know: a newer version migrated it", u.Set, u.Version, u.Slug, version()),
			"run the version that migrated the database, or a newer one; do not run an older binary against it")
	}
	if len(st.Pending) == 0 {
		if len(st.Unknown) == 0 {
			rep.add("postgres", "migrations", doctorOK, fmt.Sprintf("all %d migrations applied", st.Applied), "")
		}
		return
	}
	var names []string
	for _, p := range st.Pending {
		names = append(names, fmt.Sprintf("%s/%03d_%s", p.Set, p.Version, p.Slug))
	}
	if len(names) > 5 {
		names = append(names[:5], fmt.Sprintf("and %d more", len(st.Pending)-5))
	}
	rep.add("postgres", "migrations", doctorFail,
		fmt.Sprintf("%d migration(s) pending: %s", len(st.Pending), strings.Join(names, ", ")),
		"run `socialhub migrate` (or the migrate Job); the hub also applies them at start")
	var canCreate bool
	if err := pool.QueryRow(ctx, `SELECT has_database_privilege(current_user, current_database(), 'CREATE')
		AND has_schema_privilege(current_user, 'public', 'CREATE')`).Scan(&canCreate); err != nil {
		rep.add("postgres", "rights", doctorFail, err.Error(), "")
		return
	}
	if !canCreate {
		rep.add("postgres", "rights", doctorFail,
			fmt.Sprintf("user %s may not create tables in database %s (schema public), and migrations are pending", user, db),
			fmt.Sprintf("GRANT CREATE ON DATABASE %s TO %s; GRANT CREATE ON SCHEMA public TO %s — or run the migrations as the owner", db, user, user))
		return
	}
	rep.add("postgres", "rights", doctorOK, fmt.Sprintf("user %s may create tables", user), "")
}

// doctorKafka checks each broker on its own (a dead one among live ones is not visible through a
// client that fails over), then the topics through the cluster's metadata and configs.
func doctorKafka(ctx context.Context, rep *doctorReport, cfg config.Config, timeout time.Duration) {
	if len(cfg.Kafka.Brokers) == 0 {
		rep.add("kafka", "connect", doctorSkip, "no kafka.brokers: `socialhub run` starts its embedded broker", "")
		return
	}
	kcfg, err := hub.KafkaConfig(cfg)
	kcfg.ClientID = "socialhub-doctor"
	if err != nil {
		rep.add("kafka", "tls/sasl", doctorFail, err.Error(), "correct kafka.tls / kafka.sasl")
		return
	}
	transport := &kafka.Transport{ClientID: "socialhub-doctor", DialTimeout: timeout, TLS: kcfg.TLS, SASL: kcfg.SASL}
	defer transport.CloseIdleConnections()
	var live []string
	security := "plaintext"
	if kcfg.TLS != nil {
		security = "TLS"
	}
	if kcfg.SASL != nil {
		security += ", SASL " + kcfg.SASL.Name()
	}
	for _, addr := range cfg.Kafka.Brokers {
		bctx, cancel := context.WithTimeout(ctx, timeout)
		client := &kafka.Client{Addr: kafka.TCP(addr), Timeout: timeout, Transport: transport}
		md, err := client.Metadata(bctx, &kafka.MetadataRequest{Addr: kafka.TCP(addr), Topics: []string{}})
		cancel()
		if err != nil {
			fix := "check the address and that the broker runs and is reachable from here (firewall, advertised.listeners)"
			var ne net.Error
			if errors.As(err, &ne) && !ne.Timeout() || strings.Contains(err.Error(), "refused") {
				fix = "nothing listens there: check the address and that the broker runs"
			}
			if strings.Contains(strings.ToLower(err.Error()), "sasl") || strings.Contains(strings.ToLower(err.Error()), "authentic") {
				fix = "check kafka.sasl (mechanism, username) and the password variable"
			}
			if strings.Contains(strings.ToLower(err.Error()), "tls") || strings.Contains(err.Error(), "certificate") {
				fix = "check kafka.tls (ca_file, server_name) and the broker's listener"
			}
			rep.add("kafka", "broker "+addr, doctorFail, fmt.Sprintf("unreachable (%s): %v", security, err), fix)
			continue
		}
		live = append(live, addr)
		rep.add("kafka", "broker "+addr, doctorOK, fmt.Sprintf("answers (%s); cluster of %d broker(s)", security, len(md.Brokers)), "")
	}
	if len(live) == 0 {
		rep.add("kafka", "topics", doctorSkip, "no broker answered", "")
		return
	}
	tctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	client := &kafka.Client{Addr: kafka.TCP(live...), Timeout: timeout, Transport: transport}
	topics := event.NewTopics(cfg.Kafka.TopicPrefix)
	md, err := client.Metadata(tctx, &kafka.MetadataRequest{Topics: topics.All()})
	if err != nil {
		rep.add("kafka", "topics", doctorFail, err.Error(), "check the brokers' logs")
		return
	}
	byName := map[string]kafka.Topic{}
	for _, t := range md.Topics {
		if t.Error == nil {
			byName[t.Name] = t
		}
	}
	var existing []kafka.DescribeConfigRequestResource
	for _, name := range topics.All() {
		t, ok := byName[name]
		if !ok {
			rep.add("kafka", "topic "+name, doctorFail, "does not exist",
				fmt.Sprintf("start the hub once with rights to create topics (it creates them), or create it: %d partitions%s", cfg.Kafka.Partitions, compactHint(topics, name)))
			continue
		}
		existing = append(existing, kafka.DescribeConfigRequestResource{ResourceType: kafka.ResourceTypeTopic, ResourceName: name,
			ConfigNames: []string{"cleanup.policy", "max.message.bytes"}})
		switch n := len(t.Partitions); {
		case n < cfg.Kafka.Partitions:
			rep.add("kafka", "topic "+name, doctorFail,
				fmt.Sprintf("has %d partition(s), kafka.partitions says %d: at most %d process(es) can share this stage", n, cfg.Kafka.Partitions, n),
				fmt.Sprintf("add partitions (kafka-topics.sh --alter --topic %s --partitions %d) or set kafka.partitions: %d", name, cfg.Kafka.Partitions, n))
		case n > cfg.Kafka.Partitions:
			rep.add("kafka", "topic "+name, doctorWarn, fmt.Sprintf("has %d partitions, more than kafka.partitions (%d)", n, cfg.Kafka.Partitions),
				fmt.Sprintf("set kafka.partitions: %d so new deployments create the same", n))
		default:
			rep.add("kafka", "topic "+name, doctorOK, fmt.Sprintf("%d partitions", n), "")
		}
	}
	if len(existing) == 0 {
		return
	}
	// Broker-wide record size limit: every broker of the cluster should agree; the first one
	// known speaks for them.
	resources := existing
	if len(md.Brokers) > 0 {
		resources = append(resources, kafka.DescribeConfigRequestResource{ResourceType: kafka.ResourceTypeBroker,
			ResourceName: strconv.Itoa(md.Brokers[0].ID), ConfigNames: []string{"message.max.bytes"}})
	}
	dc, err := client.DescribeConfigs(tctx, &kafka.DescribeConfigsRequest{Resources: resources})
	if err != nil {
		rep.add("kafka", "topic settings", doctorFail, "cannot read topic settings: "+err.Error(),
			"grant the hub's user DescribeConfigs on its topics and the cluster")
		return
	}
	brokerMax := 0
	topicMax := map[string]int{}
	policy := map[string]string{}
	for _, r := range dc.Resources {
		if r.Error != nil {
			rep.add("kafka", "settings of "+r.ResourceName, doctorWarn, "cannot read: "+r.Error.Error(), "grant the hub's user DescribeConfigs")
			continue
		}
		for _, e := range r.ConfigEntries {
			switch e.ConfigName {
			case "message.max.bytes":
				brokerMax, _ = strconv.Atoi(e.ConfigValue)
			case "max.message.bytes":
				topicMax[r.ResourceName], _ = strconv.Atoi(e.ConfigValue)
			case "cleanup.policy":
				policy[r.ResourceName] = e.ConfigValue
			}
		}
	}
	if _, ok := byName[topics.Catalog]; ok {
		if p := policy[topics.Catalog]; !slices.Contains(strings.Split(p, ","), "compact") {
			if p == "" {
				p = "delete (the default)"
			}
			rep.add("kafka", "topic "+topics.Catalog, doctorFail,
				"cleanup.policy is "+p+": the catalog topic must be compacted, or consumers rebuilding the catalog from it lose records once retention deletes them",
				"kafka-configs.sh --alter --entity-type topics --entity-name "+topics.Catalog+" --add-config cleanup.policy=compact")
		} else {
			rep.add("kafka", "topic "+topics.Catalog, doctorOK, "compacted", "")
		}
	}
	limit, where := brokerMax, "the broker's message.max.bytes"
	for _, r := range existing {
		if v := topicMax[r.ResourceName]; v > 0 && (limit == 0 || v < limit) {
			limit, where = v, "max.message.bytes of topic "+r.ResourceName
		}
	}
	switch {
	case limit == 0:
		rep.add("kafka", "record size", doctorWarn, "the brokers did not say their message.max.bytes", "check it is at least kafka.max_message_bytes")
	case limit < cfg.Kafka.MaxMessageBytes:
		rep.add("kafka", "record size", doctorFail,
			fmt.Sprintf("%s is %d, smaller than kafka.max_message_bytes (%d): the brokers would refuse the hub's largest records", where, limit, cfg.Kafka.MaxMessageBytes),
			fmt.Sprintf("set kafka.max_message_bytes: %d, or raise the broker/topic limit", limit))
	default:
		rep.add("kafka", "record size", doctorOK, fmt.Sprintf("%s (%d) admits kafka.max_message_bytes (%d)", where, limit, cfg.Kafka.MaxMessageBytes), "")
	}
}

func compactHint(t event.Topics, name string) string {
	if t.Compacted(name) {
		return ", cleanup.policy=compact"
	}
	return ""
}
