// Stand-in for the ANSI console loader (lib/tools/ansi-console), which Maven Central does not publish.
// The server asks it for a terminal to print startup errors to; the node runs under a test fixture with no terminal.
package org.elasticsearch.io.ansi;

import java.util.function.Supplier;

import org.elasticsearch.bootstrap.ConsoleLoader;

public final class AnsiConsoleLoader implements Supplier<ConsoleLoader.Console> {
    @Override
    public ConsoleLoader.Console get() {
        return null;
    }
}
