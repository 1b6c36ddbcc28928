// The auth_http service as a process of its own (started by the benchmark for nginx):
// `node authHttpMain.js '{"host":…,"port":…,"ldap":{…},"ports":{…}}'`.
import {
  type AuthPorts,
  LdapDirectory,
  type LdapDirectoryOptions,
  createAuthHttpServer,
} from './authHttp.js';

const config = JSON.parse(process.argv[2] ?? '{}') as {
  host: string;
  port: number;
  ldap: LdapDirectoryOptions;
  ports: AuthPorts;
};
const directory = new LdapDirectory(config.ldap);
const server = createAuthHttpServer(directory, config.ports);
server.listen(config.port, config.host, () => {
  console.log(`auth_http listening on ${config.host}:${config.port}`);
});
const stop = (): void => {
  server.close();
  void directory.close().finally(() => process.exit(0));
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
