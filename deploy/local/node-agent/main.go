// tenx-node-agent is the node of the local development cluster: a
// virtual-kubelet provider that runs each container's command as a host
// process (no images, no container runtime). See README in deploy/local.
//
//	tenx-node-agent --kubeconfig PATH --node-name tenx-local --listen-addr 127.0.0.1:10250 \
//	    --tls-cert PATH --tls-key PATH --state-dir PATH [--crashloop-base 10s --crashloop-max 5m]
//
// `tenx-node-agent exec-container ...` is the internal helper that starts a
// container process (mountns.go).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	vklog "github.com/virtual-kubelet/virtual-kubelet/log"
	vkslog "github.com/virtual-kubelet/virtual-kubelet/log/slog"
	"github.com/virtual-kubelet/virtual-kubelet/node"
	"github.com/virtual-kubelet/virtual-kubelet/node/nodeutil"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"
)

type options struct {
	kubeconfig string
	nodeName   string
	listenAddr string
	tlsCert    string
	tlsKey     string
	stateDir   string
	crashBase  time.Duration
	crashMax   time.Duration
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == execContainerCmd {
		os.Exit(execContainerMain(os.Args[2:]))
	}
	opts, err := parseFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "tenx-node-agent:", err)
		os.Exit(2)
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	slog.SetDefault(logger)
	vklog.L = vkslog.FromSlog(logger)
	klog.SetSlogLogger(logger)

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := run(ctx, opts); err != nil {
		slog.Error("tenx-node-agent failed", "err", err)
		os.Exit(1)
	}
}

func parseFlags(args []string) (options, error) {
	var o options
	fs := flag.NewFlagSet("tenx-node-agent", flag.ContinueOnError)
	fs.StringVar(&o.kubeconfig, "kubeconfig", "", "kubeconfig of the API server to register with (required)")
	fs.StringVar(&o.nodeName, "node-name", "tenx-local", "name of the Node object")
	fs.StringVar(&o.listenAddr, "listen-addr", "127.0.0.1:10250", "address of the kubelet API (TLS)")
	fs.StringVar(&o.tlsCert, "tls-cert", "", "serving certificate for the kubelet API (required)")
	fs.StringVar(&o.tlsKey, "tls-key", "", "key of --tls-cert (required)")
	fs.StringVar(&o.stateDir, "state-dir", "", "directory for pod logs, working directories and volumes (required)")
	fs.DurationVar(&o.crashBase, "crashloop-base", 10*time.Second, "first crash-loop restart delay")
	fs.DurationVar(&o.crashMax, "crashloop-max", 5*time.Minute, "maximum crash-loop restart delay")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	for name, v := range map[string]string{"--kubeconfig": o.kubeconfig, "--tls-cert": o.tlsCert, "--tls-key": o.tlsKey, "--state-dir": o.stateDir} {
		if v == "" {
			return o, fmt.Errorf("%s is required", name)
		}
	}
	if o.crashBase <= 0 || o.crashMax < o.crashBase {
		return o, errors.New("need 0 < --crashloop-base <= --crashloop-max")
	}
	abs, err := filepath.Abs(o.stateDir)
	if err != nil {
		return o, err
	}
	o.stateDir = abs
	return o, nil
}

func run(ctx context.Context, o options) error {
	if err := os.MkdirAll(filepath.Join(o.stateDir, "pods"), 0o755); err != nil {
		return err
	}
	restCfg, err := clientcmd.BuildConfigFromFlags("", o.kubeconfig)
	if err != nil {
		return fmt.Errorf("loading kubeconfig: %w", err)
	}
	// Status writes for many short pods would be throttled by client-go's
	// default 5 QPS.
	restCfg.QPS, restCfg.Burst = 50, 100
	restCfg.UserAgent = "tenx-node-agent/" + agentVersion
	client, err := kubernetes.NewForConfig(restCfg)
	if err != nil {
		return err
	}
	nodeSpec, err := buildNode(o.nodeName, o.listenAddr, o.stateDir)
	if err != nil {
		return err
	}

	// Before the pod controller starts: clean up after a previous agent.
	killOrphans(o.stateDir)
	if err := failStalePods(ctx, client, o.nodeName, o.stateDir); err != nil {
		return fmt.Errorf("recovering pods of a previous agent: %w", err)
	}

	prov := newProvider(providerConfig{
		nodeName: o.nodeName, stateDir: o.stateDir, crashBase: o.crashBase, crashMax: o.crashMax,
	}, client)
	mux := http.NewServeMux()
	// NewNode builds a default client from $KUBECONFIG before our options
	// replace it, and warns when it cannot; point it at the same file.
	os.Setenv("KUBECONFIG", o.kubeconfig)
	vkNode, err := nodeutil.NewNode(o.nodeName,
		func(pc nodeutil.ProviderConfig) (nodeutil.Provider, node.NodeProvider, error) {
			prov.pods, prov.configMaps, prov.secrets = pc.Pods, pc.ConfigMaps, pc.Secrets
			return prov, nil, nil
		},
		func(c *nodeutil.NodeConfig) error {
			c.Client = client
			c.NodeSpec = *nodeSpec
			c.HTTPListenAddr = o.listenAddr
			c.Handler = logsMiddleware(mux)
			// We resolve env ourselves: the library's resolution also adds
			// service variables (KUBERNETES_SERVICE_HOST, ...).
			c.SkipDownwardAPIResolution = true
			c.NumWorkers = 4
			c.NodeStatusUpdateErrorHandler = recreateNode(client, nodeSpec)
			return nil
		},
		nodeutil.WithTLSConfig(nodeutil.WithKeyPairFromPath(o.tlsCert, o.tlsKey)),
		nodeutil.AttachProviderRoutes(mux),
	)
	if err != nil {
		return err
	}

	errc := make(chan error, 1)
	go func() { errc <- vkNode.Run(ctx) }()
	if err := vkNode.WaitReady(ctx, 2*time.Minute); err != nil {
		return fmt.Errorf("node did not become ready: %w", err)
	}
	slog.Info("node registered and ready", "node", o.nodeName, "listen", o.listenAddr, "stateDir", o.stateDir)
	go gcPodDirs(ctx, prov, time.Minute)

	select {
	case <-ctx.Done():
		slog.Info("shutting down: stopping all containers")
	case err := <-errc:
		if err != nil {
			slog.Error("node controller exited", "err", err)
		}
	}
	// The status writes in shutdown need the API server, not our context.
	prov.shutdown(2 * time.Second)
	return nil
}

// recreateNode re-registers the node if someone deleted it.
func recreateNode(client kubernetes.Interface, spec *corev1.Node) node.ErrorHandler {
	return func(ctx context.Context, err error) error {
		if !apierrors.IsNotFound(err) {
			return err
		}
		slog.Warn("node object is gone; registering it again")
		_, cerr := client.CoreV1().Nodes().Create(ctx, spec.DeepCopy(), metav1.CreateOptions{})
		return cerr
	}
}
