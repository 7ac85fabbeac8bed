// Package deploy holds the hub's deployment files; its test checks that they parse and agree with
// the code: every role runs somewhere, probes hit the hub's endpoints, secrets are the variables the
// hub reads, the configuration loads. There is no Docker engine or cluster in CI, so this is the
// check that the files are not left behind when the code moves.
package deploy

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"socialhub/internal/attest"
	"socialhub/internal/config"
	"socialhub/internal/pseudonym"
)

// knownEnv is every environment variable the hub reads: what config.Load asks for, plus the keys
// the pseudonym and attestation packages read.
func knownEnv(t *testing.T) map[string]bool {
	t.Helper()
	seen := map[string]bool{pseudonym.EnvKey: true, attest.EnvMasterKey: true}
	_, err := config.Load("", func(k string) string { seen[k] = true; return "" })
	require.NoError(t, err)
	return seen
}

// secretEnv are the variables that carry secrets: they belong in a Secret or env file, never in
// the configuration or a manifest.
var secretEnv = []string{"DATABASE_URL", pseudonym.EnvKey, attest.EnvMasterKey, "SOCIALHUB_ADMIN_TOKEN", "SOCIALHUB_KAFKA_PASSWORD"}

// rolesOf returns the roles of a `serve --roles=...` command line, or nil for another command.
func rolesOf(t *testing.T, args []string) []string {
	t.Helper()
	if len(args) == 0 || args[0] != "serve" {
		return nil
	}
	for i, a := range args {
		v, ok := strings.CutPrefix(a, "--roles=")
		if !ok && a == "--roles" && i+1 < len(args) {
			v, ok = args[i+1], true
		}
		if ok {
			roles := strings.Split(v, ",")
			for _, r := range roles {
				require.Contains(t, config.AllRoles, r, "unknown role in %v", args)
			}
			return roles
		}
	}
	return config.AllRoles
}

// loadConfig loads a configuration the way the hub does, with the deployment's environment.
func loadConfig(t *testing.T, yamlText string) config.Config {
	t.Helper()
	path := filepath.Join(t.TempDir(), "socialhub.yaml")
	require.NoError(t, os.WriteFile(path, []byte(yamlText), 0o600))
	env := map[string]string{"DATABASE_URL": "postgres://socialhub@postgres:5432/socialhub", "SOCIALHUB_KAFKA_BROKERS": "kafka:9092"}
	cfg, err := config.Load(path, func(k string) string { return env[k] })
	require.NoError(t, err)
	require.NoError(t, cfg.Validate())
	return cfg
}

func TestConfigLoads(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("socialhub.yaml")
	require.NoError(t, err)
	cfg := loadConfig(t, string(b))
	require.Equal(t, "json", cfg.Log.Format, "deployments log JSON for the collector")
	// The configuration file must not carry a secret: DATABASE_URL comes from the environment.
	raw := map[string]any{}
	require.NoError(t, yaml.Unmarshal(b, &raw))
	require.NotContains(t, raw, "database_url", "the database URL (with its password) belongs in the Secret")
}

type composeFile struct {
	Services map[string]struct {
		Image       string            `yaml:"image"`
		Command     []string          `yaml:"command"`
		Environment map[string]string `yaml:"environment"`
		EnvFile     []struct {
			Path     string `yaml:"path"`
			Required bool   `yaml:"required"`
		} `yaml:"env_file"`
		ReadOnly  bool     `yaml:"read_only"`
		User      string   `yaml:"user"`
		Tmpfs     []string `yaml:"tmpfs"`
		DependsOn map[string]struct {
			Condition string `yaml:"condition"`
		} `yaml:"depends_on"`
		Deploy struct {
			Replicas int `yaml:"replicas"`
		} `yaml:"deploy"`
		Configs []struct {
			Source string `yaml:"source"`
			Target string `yaml:"target"`
		} `yaml:"configs"`
	} `yaml:"services"`
	Configs map[string]struct {
		File string `yaml:"file"`
	} `yaml:"configs"`
}

func TestCompose(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("compose.yaml")
	require.NoError(t, err)
	var c composeFile
	require.NoError(t, yaml.Unmarshal(b, &c))
	known := knownEnv(t)

	kafka, ok := c.Services["kafka"]
	require.True(t, ok, "a kafka service")
	require.True(t, strings.HasPrefix(kafka.Image, "apache/kafka:"), "the official Apache Kafka image, got %q", kafka.Image)
	require.Contains(t, kafka.Environment["KAFKA_PROCESS_ROLES"], "controller", "KRaft: the broker is its own controller")
	require.Equal(t, "false", kafka.Environment["KAFKA_AUTO_CREATE_TOPICS_ENABLE"], "the hub creates its topics with their settings")
	for k := range kafka.Environment {
		require.NotContains(t, k, "ZOOKEEPER")
	}
	require.True(t, strings.HasPrefix(c.Services["postgres"].Image, "postgres:"))

	migrate := c.Services["migrate"]
	require.Equal(t, "migrate", migrate.Command[0], "a one-shot migrate service")
	covered := map[string]bool{}
	hubs := 0
	for name, s := range c.Services {
		if s.Image != "socialhub:latest" {
			continue
		}
		hubs++
		require.True(t, s.ReadOnly, "%s: read-only root file system", name)
		require.NotEmpty(t, s.User, "%s: runs as a user", name)
		require.NotEqual(t, "0", strings.Split(s.User, ":")[0], "%s: not as root", name)
		require.NotEmpty(t, s.Tmpfs, "%s: a writable data directory", name)
		require.Len(t, s.EnvFile, 1, "%s: secrets from the env file", name)
		require.Equal(t, "secrets.env", s.EnvFile[0].Path)
		for k := range s.Environment {
			require.True(t, known[k], "%s: the hub does not read %s", name, k)
			require.NotContains(t, secretEnv, k, "%s: %s is a secret: put it in secrets.env", name, k)
		}
		require.Len(t, s.Configs, 1)
		require.Contains(t, c.Configs, s.Configs[0].Source)
		require.Contains(t, s.Command, s.Configs[0].Target, "%s: reads the mounted configuration", name)
		for _, r := range rolesOf(t, s.Command) {
			covered[r] = true
		}
		if len(rolesOf(t, s.Command)) > 0 {
			require.Equal(t, "service_completed_successfully", s.DependsOn["migrate"].Condition, "%s waits for the migrations", name)
			require.Equal(t, "service_healthy", s.DependsOn["kafka"].Condition)
		}
	}
	require.GreaterOrEqual(t, hubs, 3)
	for _, r := range config.AllRoles {
		require.True(t, covered[r], "no compose service runs role %s", r)
	}
	require.Equal(t, 2, c.Services["api"].Deploy.Replicas)
	require.Contains(t, rolesOf(t, c.Services["api"].Command), config.RoleAPI)
	require.Contains(t, rolesOf(t, c.Services["ingest"].Command), config.RoleConnectors)

	// The env file template names every secret, and only variables the hub or PostgreSQL reads.
	tpl, err := os.ReadFile("secrets.env.example")
	require.NoError(t, err)
	names := envNames(string(tpl))
	for _, s := range []string{"DATABASE_URL", pseudonym.EnvKey, attest.EnvMasterKey, "SOCIALHUB_ADMIN_TOKEN"} {
		require.Contains(t, names, s, "secrets.env.example names %s", s)
	}
	for _, n := range names {
		require.True(t, known[n] || n == "POSTGRES_PASSWORD", "secrets.env.example: the hub does not read %s", n)
	}
}

var envLine = regexp.MustCompile(`(?m)^#?\s*([A-Z][A-Z0-9_]*)=`)

func envNames(s string) []string {
	var out []string
	for _, m := range envLine.FindAllStringSubmatch(s, -1) {
		out = append(out, m[1])
	}
	return out
}

// manifest is the part of a Kubernetes object the test checks.
type manifest struct {
	Kind     string `yaml:"kind"`
	Metadata struct {
		Name   string            `yaml:"name"`
		Labels map[string]string `yaml:"labels"`
	} `yaml:"metadata"`
	Data       map[string]string `yaml:"data"`
	StringData map[string]string `yaml:"stringData"`
	Spec       struct {
		Replicas *int             `yaml:"replicas"`
		Selector map[string]any   `yaml:"selector"`
		Template podTemplate      `yaml:"template"`
		Ports    []map[string]any `yaml:"ports"`
	} `yaml:"spec"`
}

type podTemplate struct {
	Metadata struct {
		Labels map[string]string `yaml:"labels"`
	} `yaml:"metadata"`
	Spec struct {
		SecurityContext struct {
			RunAsNonRoot bool `yaml:"runAsNonRoot"`
			RunAsUser    int  `yaml:"runAsUser"`
		} `yaml:"securityContext"`
		Containers []container `yaml:"containers"`
		Volumes    []struct {
			Name      string         `yaml:"name"`
			ConfigMap map[string]any `yaml:"configMap"`
			EmptyDir  map[string]any `yaml:"emptyDir"`
		} `yaml:"volumes"`
	} `yaml:"spec"`
}

type probe struct {
	HTTPGet struct {
		Path string `yaml:"path"`
		Port any    `yaml:"port"`
	} `yaml:"httpGet"`
}

type container struct {
	Image   string   `yaml:"image"`
	Args    []string `yaml:"args"`
	EnvFrom []struct {
		SecretRef struct {
			Name string `yaml:"name"`
		} `yaml:"secretRef"`
	} `yaml:"envFrom"`
	Env []struct {
		Name string `yaml:"name"`
	} `yaml:"env"`
	ReadinessProbe *probe `yaml:"readinessProbe"`
	LivenessProbe  *probe `yaml:"livenessProbe"`
	Resources      struct {
		Requests map[string]string `yaml:"requests"`
		Limits   map[string]string `yaml:"limits"`
	} `yaml:"resources"`
	SecurityContext struct {
		ReadOnlyRootFilesystem   bool `yaml:"readOnlyRootFilesystem"`
		AllowPrivilegeEscalation bool `yaml:"allowPrivilegeEscalation"`
	} `yaml:"securityContext"`
	VolumeMounts []struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
	} `yaml:"volumeMounts"`
}

// manifests parses every document of every file in k8s/.
func manifests(t *testing.T) map[string][]manifest {
	t.Helper()
	files, err := filepath.Glob("k8s/*.yaml")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	out := map[string][]manifest{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		dec := yaml.NewDecoder(bytes.NewReader(b))
		for {
			var m manifest
			err := dec.Decode(&m)
			if errors.Is(err, io.EOF) {
				break
			}
			require.NoError(t, err, f)
			require.NotEmpty(t, m.Kind, "%s: a document without kind", f)
			out[m.Kind] = append(out[m.Kind], m)
		}
	}
	return out
}

func TestKubernetes(t *testing.T) {
	t.Parallel()
	ms := manifests(t)
	known := knownEnv(t)

	require.Len(t, ms["ConfigMap"], 1)
	cm := ms["ConfigMap"][0]
	cfg := loadConfig(t, cm.Data["socialhub.yaml"])
	file, err := os.ReadFile("socialhub.yaml")
	require.NoError(t, err)
	require.Equal(t, string(file), cm.Data["socialhub.yaml"], "k8s/configmap.yaml carries deploy/socialhub.yaml as it is")
	require.Equal(t, "/var/lib/socialhub", cfg.DataDir)

	require.Len(t, ms["Secret"], 1)
	secret := ms["Secret"][0]
	var keys []string
	for k := range secret.StringData {
		require.True(t, known[k], "the Secret holds %s, which the hub does not read", k)
		keys = append(keys, k)
	}
	sort.Strings(keys)
	want := slices.Clone(secretEnv)
	sort.Strings(want)
	require.Equal(t, want, keys, "the Secret holds every secret the hub reads")

	covered := map[string]bool{}
	componentRoles := map[string][]string{}
	for _, d := range ms["Deployment"] {
		name := d.Metadata.Name
		pod := d.Spec.Template.Spec
		require.True(t, pod.SecurityContext.RunAsNonRoot, "%s: runAsNonRoot", name)
		require.NotZero(t, pod.SecurityContext.RunAsUser, "%s: a non-root uid", name)
		require.Len(t, pod.Containers, 1)
		c := pod.Containers[0]
		require.True(t, strings.HasPrefix(c.Image, "socialhub:"), "%s: the hub's image", name)
		require.NotNil(t, c.ReadinessProbe, "%s: readiness probe", name)
		require.Equal(t, "/readyz", c.ReadinessProbe.HTTPGet.Path, name)
		require.NotNil(t, c.LivenessProbe, "%s: liveness probe", name)
		require.Equal(t, "/healthz", c.LivenessProbe.HTTPGet.Path, name)
		require.NotEmpty(t, c.Resources.Requests["cpu"], "%s: cpu request", name)
		require.NotEmpty(t, c.Resources.Requests["memory"], "%s: memory request", name)
		require.NotEmpty(t, c.Resources.Limits["memory"], "%s: memory limit", name)
		require.True(t, c.SecurityContext.ReadOnlyRootFilesystem, "%s: read-only root", name)
		require.False(t, c.SecurityContext.AllowPrivilegeEscalation, name)
		require.Len(t, c.EnvFrom, 1)
		require.Equal(t, secret.Metadata.Name, c.EnvFrom[0].SecretRef.Name, "%s: secrets from the Secret", name)
		for _, e := range c.Env {
			require.True(t, known[e.Name], "%s: the hub does not read %s", name, e.Name)
			require.NotContains(t, secretEnv, e.Name, "%s: %s belongs in the Secret", name, e.Name)
		}
		mounts := map[string]string{}
		for _, vm := range c.VolumeMounts {
			mounts[vm.MountPath] = vm.Name
		}
		require.Contains(t, mounts, cfg.DataDir, "%s: the data directory is writable (a volume)", name)
		require.Contains(t, mounts, "/etc/socialhub", "%s: the configuration is mounted", name)
		require.Contains(t, c.Args, "/etc/socialhub/socialhub.yaml")
		roles := rolesOf(t, c.Args)
		require.NotEmpty(t, roles, "%s: runs serve with roles", name)
		for _, r := range roles {
			covered[r] = true
		}
		componentRoles[d.Spec.Template.Metadata.Labels["app.kubernetes.io/component"]] = roles
	}
	for _, r := range config.AllRoles {
		require.True(t, covered[r], "no Deployment runs role %s", r)
	}

	require.Len(t, ms["Service"], 1)
	svc := ms["Service"][0]
	sel, ok := svc.Spec.Selector["app.kubernetes.io/component"].(string)
	require.True(t, ok, "the Service selects a component")
	require.Contains(t, componentRoles[sel], config.RoleAPI, "the Service points at the API's pods")

	require.Len(t, ms["Job"], 1)
	job := ms["Job"][0].Spec.Template.Spec
	require.Equal(t, "migrate", job.Containers[0].Args[0], "the Job runs the migrations")
	require.True(t, job.SecurityContext.RunAsNonRoot)
}

// TestDockerfile: the image builds what `make build` builds — the same package, the same version
// stamp — as a static binary, and runs it as a non-root user.
func TestDockerfile(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("Dockerfile")
	require.NoError(t, err)
	df := string(b)
	mk, err := os.ReadFile("../Makefile")
	require.NoError(t, err)

	require.GreaterOrEqual(t, strings.Count(df, "\nFROM "), 2, "a multi-stage build")
	build := regexp.MustCompile(`CGO_ENABLED=0 go build (?:[^\n\\]|\\\n)*`).FindString(df)
	require.NotEmpty(t, build, "a static build (CGO_ENABLED=0)")
	pkg := regexp.MustCompile(`(?m)^build:.*\n(?:\t.*\n)*?\t\$\(GO\) build .* (\./cmd/\S+)\s*$`).FindSubmatch(mk)
	require.NotNil(t, pkg, "make build's go build line")
	require.Contains(t, build, string(pkg[1]), "the image builds the package make build builds")
	stamp := regexp.MustCompile(`-X (socialhub/\S+)=\$\(VERSION\)`).FindSubmatch(mk)
	require.NotNil(t, stamp, "the Makefile stamps the version")
	require.Contains(t, build, "-X "+string(stamp[1])+"=", "the image stamps the version the same way")

	users := regexp.MustCompile(`(?m)^USER\s+(\S+)`).FindAllStringSubmatch(df, -1)
	require.NotEmpty(t, users)
	user := users[len(users)-1][1]
	uid := strings.Split(user, ":")[0]
	require.Regexp(t, `^[1-9][0-9]*$`, uid, "a numeric non-root uid, so runAsNonRoot can check it")
	// The manifests' runAsUser is the image's user.
	for _, d := range manifests(t)["Deployment"] {
		require.Equal(t, uid, strconv.Itoa(d.Spec.Template.Spec.SecurityContext.RunAsUser), d.Metadata.Name)
	}
	require.Regexp(t, `(?m)^ENTRYPOINT \["/usr/local/bin/socialhub"\]`, df)
}
