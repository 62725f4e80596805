// kubectl for Signet's tests and runbooks: the upstream kubectl command tree
// (k8s.io/kubectl, the same release as the API server harness), so the
// runbooks' kubectl lines run against tests/apiserver without a system kubectl.
package main

import (
	"os"

	"k8s.io/component-base/cli"
	"k8s.io/kubectl/pkg/cmd"
	"k8s.io/kubectl/pkg/cmd/util"
)

func main() {
	root := cmd.NewDefaultKubectlCommand()
	if err := cli.RunNoErrOutput(root); err != nil {
		// Print the error the way kubectl does and exit with its code.
		util.CheckErr(err)
		os.Exit(1)
	}
}
