// Stand-in for Elasticsearch's entitlement agent jar, which Maven Central does not publish.
// The server self-attaches the jar in lib/entitlement-agent and passes the name of its own initialisation class
// as the agent argument; the published agent does nothing but call that class's initialize(Instrumentation).
package svc.espeer;

import java.lang.instrument.Instrumentation;

public final class EntitlementAgent {
    private EntitlementAgent() {}

    public static void agentmain(String initClass, Instrumentation inst) throws ReflectiveOperationException {
        Class.forName(initClass).getMethod("initialize", Instrumentation.class).invoke(null, inst);
    }
}
