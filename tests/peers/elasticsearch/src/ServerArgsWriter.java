// Stand-in for the launcher (server-cli), which Maven Central does not publish: it writes the ServerArgs the launcher
// pipes to the server's stdin. Usage: ServerArgsWriter HOME LOGS_DIR key=value... > args.bin
// Whoever feeds the bytes to the server keeps its stdin open: the server reads end-of-stream as "shut down".
package svc.espeer;

import java.nio.file.Path;

import org.elasticsearch.bootstrap.ServerArgs;
import org.elasticsearch.common.io.stream.OutputStreamStreamOutput;
import org.elasticsearch.common.settings.KeyStoreWrapper;
import org.elasticsearch.common.settings.Settings;

public final class ServerArgsWriter {
    private ServerArgsWriter() {}

    public static void main(String[] args) throws Exception {
        if (args.length < 2) {
            System.err.println("usage: server-args HOME LOGS_DIR [key=value...]");
            System.exit(2);
        }
        Path home = Path.of(args[0]).toAbsolutePath();
        Path logs = Path.of(args[1]).toAbsolutePath();
        Settings.Builder settings = Settings.builder().put("path.home", home.toString()).put("path.logs", logs.toString());
        for (int i = 2; i < args.length; i++) {
            int eq = args[i].indexOf('=');
            if (eq < 1) {
                System.err.println("server-args: not a key=value setting: " + args[i]);
                System.exit(2);
            }
            settings.put(args[i].substring(0, eq), args[i].substring(eq + 1));
        }
        // An empty, unsaved keystore with the bootstrap seed: what the launcher passes when no keystore exists.
        KeyStoreWrapper secrets = KeyStoreWrapper.create();
        KeyStoreWrapper.addBootstrapSeed(secrets);
        ServerArgs serverArgs = new ServerArgs(false, false, null, secrets, settings.build(), home.resolve("config"), logs);
        try (var out = new OutputStreamStreamOutput(System.out)) {
            serverArgs.writeTo(out);
        }
    }
}
