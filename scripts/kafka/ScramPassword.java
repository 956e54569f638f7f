import java.util.List;
import java.util.Map;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.ScramCredentialInfo;
import org.apache.kafka.clients.admin.ScramMechanism;
import org.apache.kafka.clients.admin.UserScramCredentialUpsertion;

/**
 * Sets the SCRAM-SHA-512 and SCRAM-SHA-256 credentials of a user on a running broker, as
 * `kafka-configs.sh --alter --add-config 'SCRAM-SHA-512=[password=...]' --entity-type users` does (that tool is not in
 * the broker's runtime jars): `java -cp LIBS/* ScramPassword.java HOST:PORT USER`, the password from
 * KAFKA_SASL_PASSWORD (never an argument: it would show in the process list). Used by scripts/kafka.sh scram-password.
 */
public class ScramPassword {
  public static void main(String[] args) throws Exception {
    String password = System.getenv("KAFKA_SASL_PASSWORD");
    if (args.length != 2 || password == null || password.isEmpty()) {
      System.err.println("usage: KAFKA_SASL_PASSWORD=... ScramPassword HOST:PORT USER");
      System.exit(2);
    }
    try (Admin admin = Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, args[0]))) {
      // One request per mechanism: the broker refuses two alterations of one user in one request.
      for (ScramMechanism mechanism : List.of(ScramMechanism.SCRAM_SHA_512, ScramMechanism.SCRAM_SHA_256)) {
        admin
            .alterUserScramCredentials(
                List.of(
                    new UserScramCredentialUpsertion(
                        args[1], new ScramCredentialInfo(mechanism, 8192), password)))
            .all()
            .get();
      }
    }
  }
}
