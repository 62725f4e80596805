package main

// The Kubernetes components the harness runs as child processes of its own binary
// (`signet-apiserver controller-manager|scheduler|kubelet|proxy ARGS…`): one Go build links
// them all, and each child exits when its standard input closes (the parent is gone).

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"
	kcmapp "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	proxyapp "k8s.io/kubernetes/cmd/kube-proxy/app"
	schedulerapp "k8s.io/kubernetes/cmd/kube-scheduler/app"
	kubeletapp "k8s.io/kubernetes/cmd/kubelet/app"
)

// components maps a subcommand to the cobra command of the component it runs.
var components = map[string]func() *cobra.Command{
	"controller-manager": kcmapp.NewControllerManagerCommand,
	"scheduler":          func() *cobra.Command { return schedulerapp.NewSchedulerCommand() },
	"kubelet":            func() *cobra.Command { return kubeletapp.NewKubeletCommand(context.Background()) },
	"proxy":              proxyapp.NewProxyCommand,
}

// runComponent runs the named component with args; it exits when standard input closes.
func runComponent(name string, args []string) int {
	newCommand, ok := components[name]
	if !ok {
		fmt.Fprintf(os.Stderr, "unknown component %q\n", name)
		return 2
	}
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		os.Exit(0)
	}()
	cmd := newCommand()
	cmd.SetArgs(args)
	return cli.Run(cmd)
}
