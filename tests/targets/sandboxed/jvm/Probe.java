// A CLI checker on the JVM: it starts with a large heap reserved and a pool of threads,
// which an address-space limit would refuse; the sandbox's limits are on memory really used.
public class Probe {
    public static void main(String[] args) throws Exception {
        Thread[] pool = new Thread[32];
        for (int i = 0; i < pool.length; i++) {
            pool[i] = new Thread(() -> { byte[] chunk = new byte[4 << 20]; chunk[0] = 1; });
            pool[i].start();
        }
        for (Thread t : pool) t.join();
        System.out.println("jvm ok, max heap " + Runtime.getRuntime().maxMemory() / (1 << 20) + " MiB");
        System.exit(101);
    }
}
