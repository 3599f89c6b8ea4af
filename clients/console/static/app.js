var G,C,Ae,$t,O,we,Ce,Ee,re,V,q,Pe,ie,se,ae,vt,Y={},J=[],yt=/acit|ex(?:s|g|n|p|$)|rph|grid|ows|mnc|ntw|ine[ch]|zoo|^ord|itera/i,Q=Array.isArray;function F(e,t){for(var n in t)e[n]=t[n];return e}function le(e){e&&e.parentNode&&e.parentNode.removeChild(e)}function ce(e,t,n){var o,s,r,i={};for(r in t)r=="key"?o=t[r]:r=="ref"?s=t[r]:i[r]=t[r];if(arguments.length>2&&(i.children=arguments.length>3?G.call(arguments,2):n),typeof e=="function"&&e.defaultProps!=null)for(r in e.defaultProps)i[r]===void 0&&(i[r]=e.defaultProps[r]);return B(e,i,o,s,null)}function B(e,t,n,o,s){var r={type:e,props:t,key:n,ref:o,__k:null,__:null,__b:0,__e:null,__c:null,constructor:void 0,__v:s??++Ae,__i:-1,__u:0};return s==null&&C.vnode!=null&&C.vnode(r),r}function X(e){return e.children}function K(e,t){this.props=e,this.context=t}function H(e,t){if(t==null)return e.__?H(e.__,e.__i+1):null;for(var n;t<e.__k.length;t++)if((n=e.__k[t])!=null&&n.__e!=null)return n.__e;return typeof e.type=="function"?H(e):null}function gt(e){if(e.__P&&e.__d){var t=e.__v,n=t.__e,o=[],s=[],r=F({},t);r.__v=t.__v+1,C.vnode&&C.vnode(r),ue(e.__P,r,t,e.__n,e.__P.namespaceURI,32&t.__u?[n]:null,o,n??H(t),!!(32&t.__u),s),r.__v=t.__v,r.__.__k[r.__i]=r,Ne(o,r,s),t.__e=t.__=null,r.__e!=n&&je(r)}}function je(e){if((e=e.__)!=null&&e.__c!=null)return e.__e=e.__c.base=null,e.__k.some(function(t){if(t!=null&&t.__e!=null)return e.__e=e.__c.base=t.__e}),je(e)}function ke(e){(!e.__d&&(e.__d=!0)&&O.push(e)&&!z.__r++||we!=C.debounceRendering)&&((we=C.debounceRendering)||Ce)(z)}function z(){try{for(var e,t=1;O.length;)O.length>t&&O.sort(Ee),e=O.shift(),t=O.length,gt(e)}finally{O.length=z.__r=0}}function Ie(e,t,n,o,s,r,i,c,_,l,u){var d,a,h,m,k,b,S=o&&o.__k||J,y=t.length;for(_=bt(n,t,S,_,y),d=0;d<y;d++)(h=n.__k[d])!=null&&(a=h.__i!=-1&&S[h.__i]||Y,h.__i=d,b=ue(e,h,a,s,r,i,c,_,l,u),m=h.__e,h.ref&&a.ref!=h.ref&&(a.ref&&_e(a.ref,null,h),u.push(h.ref,h.__c||m,h)),k==null&&m!=null&&(k=m),4&h.__u?(_=Te(h,_,e),a.__e&&(a.__e=null)):typeof h.type=="function"&&b!==void 0?_=b:m&&(_=m.nextSibling),h.__u&=-7);return n.__e=k,_}function bt(e,t,n,o,s){var r,i,c,_,l,u=n.length,d=u,a=0;for(e.__k=new Array(s),r=0;r<s;r++)(i=t[r])!=null&&typeof i!="boolean"&&typeof i!="function"?(typeof i=="string"||typeof i=="number"||typeof i=="bigint"||i.constructor==String?i=e.__k[r]=B(null,i,null,null,null):Q(i)?i=e.__k[r]=B(X,{children:i},null,null,null):i.constructor===void 0&&i.__b>0?i=e.__k[r]=B(i.type,i.props,i.key,i.ref?i.ref:null,i.__v):e.__k[r]=i,_=r+a,i.__=e,i.__b=e.__b+1,c=null,(l=i.__i=wt(i,n,_,d))!=-1&&(d--,(c=n[l])&&(c.__u|=2)),c==null||c.__v==null?(l==-1&&(s>u?a--:s<u&&a++),typeof i.type!="function"&&(i.__u|=4)):l!=_&&(l==_-1?a--:l==_+1?a++:(l>_?a--:a++,i.__u|=4))):e.__k[r]=null;if(d)for(r=0;r<u;r++)(c=n[r])!=null&&(2&c.__u)==0&&(c.__e==o&&(o=H(c)),Me(c,c));return o}function Te(e,t,n){var o,s;if(typeof e.type=="function"){for(o=e.__k,s=0;o&&s<o.length;s++)o[s]&&(o[s].__=e,t=Te(o[s],t,n));return t}e.__e!=t&&(t&&e.type&&!t.parentNode&&(t=H(e)),t=n.insertBefore(e.__e,t||null));do t=t&&t.nextSibling;while(t!=null&&t.nodeType==8);return t}function wt(e,t,n,o){var s,r,i,c=e.key,_=e.type,l=t[n],u=l!=null&&(2&l.__u)==0;if(l===null&&c==null||u&&c==l.key&&_==l.type)return n;if(o>(u?1:0)){for(s=n-1,r=n+1;s>=0||r<t.length;)if((l=t[i=s>=0?s--:r++])!=null&&(2&l.__u)==0&&c==l.key&&_==l.type)return i}return-1}function Se(e,t,n){t[0]=="-"?e.setProperty(t,n??""):e[t]=n==null?"":typeof n!="number"||yt.test(t)?n:n+"px"}function W(e,t,n,o,s){var r,i;e:if(t=="style")if(typeof n=="string")e.style.cssText=n;else{if(typeof o=="string"&&(e.style.cssText=o=""),o)for(t in o)n&&t in n||Se(e.style,t,"");if(n)for(t in n)o&&n[t]==o[t]||Se(e.style,t,n[t])}else if(t[0]=="o"&&t[1]=="n")r=t!=(t=t.replace(Pe,"$1")),i=t.toLowerCase(),t=i in e||t=="onFocusOut"||t=="onFocusIn"?i.slice(2):t.slice(2),e.l||(e.l={}),e.l[t+r]=n,n?o?n[q]=o[q]:(n[q]=ie,e.addEventListener(t,r?ae:se,r)):e.removeEventListener(t,r?ae:se,r);else{if(s=="http://www.w3.org/2000/svg")t=t.replace(/xlink(H|:h)/,"h").replace(/sName$/,"s");else if(t!="width"&&t!="height"&&t!="href"&&t!="list"&&t!="form"&&t!="tabIndex"&&t!="download"&&t!="rowSpan"&&t!="colSpan"&&t!="role"&&t!="popover"&&t in e)try{e[t]=n??"";break e}catch{}typeof n=="function"||(n==null||n===!1&&t[4]!="-"?e.removeAttribute(t):e.setAttribute(t,t=="popover"&&n==1?"":n))}}function xe(e){return function(t){if(this.l){var n=this.l[t.type+e];if(t[V]==null)t[V]=ie++;else if(t[V]<n[q])return;return n(C.event?C.event(t):t)}}}function ue(e,t,n,o,s,r,i,c,_,l){var u,d,a,h,m,k,b,S,y,P,w,A,U,p,x,L,M=t.type;if(t.constructor!==void 0)return null;128&n.__u&&(_=!!(32&n.__u),r=[c=t.__e=n.__e]),(u=C.__b)&&u(t);e:if(typeof M=="function"){d=i.length;try{if(y=t.props,P=M.prototype&&M.prototype.render,w=(u=M.contextType)&&o[u.__c],A=u?w?w.props.value:u.__:o,n.__c?S=(a=t.__c=n.__c).__=a.__E:(P?t.__c=a=new M(y,A):(t.__c=a=new K(y,A),a.constructor=M,a.render=St),w&&w.sub(a),a.state||(a.state={}),a.__n=o,h=a.__d=!0,a.__h=[],a._sb=[]),P&&a.__s==null&&(a.__s=a.state),P&&M.getDerivedStateFromProps!=null&&(a.__s==a.state&&(a.__s=F({},a.__s)),F(a.__s,M.getDerivedStateFromProps(y,a.__s))),m=a.props,k=a.state,a.__v=t,h)P&&M.getDerivedStateFromProps==null&&a.componentWillMount!=null&&a.componentWillMount(),P&&a.componentDidMount!=null&&a.__h.push(a.componentDidMount);else{if(P&&M.getDerivedStateFromProps==null&&y!==m&&a.componentWillReceiveProps!=null&&a.componentWillReceiveProps(y,A),t.__v==n.__v||!a.__e&&a.shouldComponentUpdate!=null&&a.shouldComponentUpdate(y,a.__s,A)===!1){t.__v!=n.__v&&(a.props=y,a.state=a.__s,a.__d=!1),t.__e=n.__e,t.__k=n.__k,t.__k.some(function(R){R&&(R.__=t)}),J.push.apply(a.__h,a._sb),a._sb=[],a.__h.length&&i.push(a),c=H(n);break e}a.componentWillUpdate!=null&&a.componentWillUpdate(y,a.__s,A),P&&a.componentDidUpdate!=null&&a.__h.push(function(){a.componentDidUpdate(m,k,b)})}if(a.context=A,a.props=y,a.__P=e,a.__e=!1,U=C.__r,p=0,P)a.state=a.__s,a.__d=!1,U&&U(t),u=a.render(a.props,a.state,a.context),J.push.apply(a.__h,a._sb),a._sb=[];else do a.__d=!1,U&&U(t),u=a.render(a.props,a.state,a.context),a.state=a.__s;while(a.__d&&++p<25);a.state=a.__s,a.getChildContext!=null&&(o=F(F({},o),a.getChildContext())),P&&!h&&a.getSnapshotBeforeUpdate!=null&&(b=a.getSnapshotBeforeUpdate(m,k)),x=u!=null&&u.type===X&&u.key==null?Ue(u.props.children):u,c=Ie(e,Q(x)?x:[x],t,n,o,s,r,i,c,_,l),a.base=t.__e,t.__u&=-161,a.__h.length&&i.push(a),S&&(a.__E=a.__=null)}catch(R){if(i.length=d,t.__v=null,_||r!=null){if(R.then){for(t.__u|=_?160:128;c&&c.nodeType==8&&c.nextSibling;)c=c.nextSibling;r!=null&&(r[r.indexOf(c)]=null),t.__e=c}else if(r!=null)for(L=r.length;L--;)le(r[L])}else t.__e=n.__e;t.__k==null&&(t.__k=n.__k||[]),R.then||De(t),C.__e(R,t,n)}}else r==null&&t.__v==n.__v?(t.__k=n.__k,t.__e=n.__e):c=t.__e=kt(n.__e,t,n,o,s,r,i,_,l);return(u=C.diffed)&&u(t),128&t.__u?void 0:c}function De(e){e&&(e.__c&&(e.__c.__e=!0),e.__k&&e.__k.some(De))}function Ne(e,t,n){for(var o=0;o<n.length;o++)_e(n[o],n[++o],n[++o]);C.__c&&C.__c(t,e),e.some(function(s){try{e=s.__h,s.__h=[],e.some(function(r){r.call(s)})}catch(r){C.__e(r,s.__v)}})}function Ue(e){return typeof e!="object"||e==null||e.__b>0?e:Q(e)?e.map(Ue):e.constructor!==void 0?null:F({},e)}function kt(e,t,n,o,s,r,i,c,_){var l,u,d,a,h,m,k,b=n.props||Y,S=t.props,y=t.type;if(y=="svg"?s="http://www.w3.org/2000/svg":y=="math"?s="http://www.w3.org/1998/Math/MathML":s||(s="http://www.w3.org/1999/xhtml"),r!=null){for(l=0;l<r.length;l++)if((h=r[l])&&"setAttribute"in h==!!y&&(y?h.localName==y:h.nodeType==3)){e=h,r[l]=null;break}}if(e==null){if(y==null)return document.createTextNode(S);e=document.createElementNS(s,y,S.is&&S),c&&(C.__m&&C.__m(t,r),c=!1),r=null}if(y==null)b===S||c&&e.data==S||(e.data=S);else{if(r=y=="textarea"&&S.defaultValue!=null?null:r&&G.call(e.childNodes),!c&&r!=null)for(b={},l=0;l<e.attributes.length;l++)b[(h=e.attributes[l]).name]=h.value;for(l in b)h=b[l],l=="dangerouslySetInnerHTML"?d=h:l=="children"||l in S||l=="value"&&"defaultValue"in S||l=="checked"&&"defaultChecked"in S||W(e,l,null,h,s);for(l in S)h=S[l],l=="children"?a=h:l=="dangerouslySetInnerHTML"?u=h:l=="value"?m=h:l=="checked"?k=h:c&&typeof h!="function"||b[l]===h||W(e,l,h,b[l],s);if(u)c||d&&(u.__html==d.__html||u.__html==e.innerHTML)||(e.innerHTML=u.__html),t.__k=[];else if(d&&(e.innerHTML=""),Ie(t.type=="template"?e.content:e,Q(a)?a:[a],t,n,o,y=="foreignObject"?"http://www.w3.org/1999/xhtml":s,r,i,r?r[0]:n.__k&&H(n,0),c,_),r!=null)for(l=r.length;l--;)le(r[l]);c&&y!="textarea"||(l="value",y=="progress"&&m==null?e.removeAttribute("value"):m!=null&&(m!==e[l]||y=="progress"&&!m||y=="option"&&m!=b[l])&&W(e,l,m,b[l],s),l="checked",k!=null&&k!=e[l]&&W(e,l,k,b[l],s))}return e}function _e(e,t,n){try{if(typeof e=="function"){var o=typeof e.__u=="function";o&&e.__u(),o&&t==null||(e.__u=e(t))}else e.current=t}catch(s){C.__e(s,n)}}function Me(e,t,n){var o,s;if(C.unmount&&C.unmount(e),(o=e.ref)&&(o.current&&o.current!=e.__e||_e(o,null,t)),(o=e.__c)!=null){if(o.componentWillUnmount)try{o.componentWillUnmount()}catch(r){C.__e(r,t)}o.base=o.__P=o.__n=null}if(o=e.__k)for(s=0;s<o.length;s++)o[s]&&Me(o[s],t,n||typeof e.type!="function");n||le(e.__e),e.__c=e.__=e.__e=void 0}function St(e,t,n){return this.constructor(e,n)}function Fe(e,t,n){var o,s,r,i;t==document&&(t=document.documentElement),C.__&&C.__(e,t),s=(o=typeof n=="function")?null:n&&n.__k||t.__k,r=[],i=[],ue(t,e=(!o&&n||t).__k=ce(X,null,[e]),s||Y,Y,t.namespaceURI,!o&&n?[n]:s?null:t.firstChild?G.call(t.childNodes):null,r,!o&&n?n:s?s.__e:t.firstChild,o,i),Ne(r,e,i),e.props.children=null}G=J.slice,C={__e:function(e,t,n,o){for(var s,r,i;t=t.__;)if((s=t.__c)&&!s.__)try{if((r=s.constructor)&&r.getDerivedStateFromError!=null&&(s.setState(r.getDerivedStateFromError(e)),i=s.__d),s.componentDidCatch!=null&&(s.componentDidCatch(e,o||{}),i=s.__d),i)return s.__E=s}catch(c){e=c}throw e}},Ae=0,$t=function(e){return e!=null&&e.constructor===void 0},K.prototype.setState=function(e,t){var n;n=this.__s!=null&&this.__s!=this.state?this.__s:this.__s=F({},this.state),typeof e=="function"&&(e=e(F({},n),this.props)),e&&F(n,e),e!=null&&this.__v&&(t&&this._sb.push(t),ke(this))},K.prototype.forceUpdate=function(e){this.__v&&(this.__e=!0,e&&this.__h.push(e),ke(this))},K.prototype.render=X,O=[],Ce=typeof Promise=="function"?Promise.prototype.then.bind(Promise.resolve()):setTimeout,Ee=function(e,t){return e.__v.__b-t.__v.__b},z.__r=0,re=Math.random().toString(8),V="__d"+re,q="__a"+re,Pe=/(PointerCapture)$|Capture$/i,ie=0,se=xe(!1),ae=xe(!0),vt=0;var ee,E,de,Oe,pe=0,Ke=[],j=C,Le=j.__b,He=j.__r,Re=j.diffed,qe=j.__c,We=j.unmount,Ve=j.__;function Ye(e,t){j.__h&&j.__h(E,e,pe||t),pe=0;var n=E.__H||(E.__H={__:[],__h:[]});return e>=n.__.length&&n.__.push({}),n.__[e]}function $(e){return pe=1,xt(Je,e)}function xt(e,t,n){var o=Ye(ee++,2);if(o.t=e,!o.__c&&(o.__=[n?n(t):Je(void 0,t),function(c){var _=o.__N?o.__N[0]:o.__[0],l=o.t(_,c);_!==l&&(o.__N=[l,o.__[1]],o.__c.setState({}))}],o.__c=E,!E.__f)){var s=function(c,_,l){if(!o.__c.__H)return!0;var u=!1,d=o.__c.props!==c;if(o.__c.__H.__.some(function(h){if(h.__N){u=!0;var m=h.__[0];h.__=h.__N,h.__N=void 0,m!==h.__[0]&&(d=!0)}}),r){var a=r.call(this,c,_,l);return u?a||d:a}return!u||d};E.__f=!0;var r=E.shouldComponentUpdate,i=E.componentWillUpdate;E.componentWillUpdate=function(c,_,l){if(this.__e){var u=r;r=void 0,s(c,_,l),r=u}i&&i.call(this,c,_,l)},E.shouldComponentUpdate=s}return o.__N||o.__}function D(e,t){var n=Ye(ee++,3);!j.__s&&Et(n.__H,t)&&(n.__=e,n.u=t,E.__H.__h.push(n))}function At(){for(var e;e=Ke.shift();){var t=e.__H;if(e.__P&&t)try{t.__h.some(Z),t.__h.some(fe),t.__h=[]}catch(n){t.__h=[],j.__e(n,e.__v)}}}j.__b=function(e){E=null,Le&&Le(e)},j.__=function(e,t){e&&t.__k&&t.__k.__m&&(e.__m=t.__k.__m),Ve&&Ve(e,t)},j.__r=function(e){He&&He(e),ee=0;var t=(E=e.__c).__H;t&&(de===E?(t.__h=[],E.__h=[],t.__.some(function(n){n.__N&&(n.__=n.__N),n.u=n.__N=void 0})):(t.__h.some(Z),t.__h.some(fe),t.__h=[],ee=0)),de=E},j.diffed=function(e){Re&&Re(e);var t=e.__c;t&&t.__H&&(t.__H.__h.length&&(Ke.push(t)!==1&&Oe===j.requestAnimationFrame||((Oe=j.requestAnimationFrame)||Ct)(At)),t.__H.__.some(function(n){n.u&&(n.__H=n.u,n.u=void 0)})),de=E=null},j.__c=function(e,t){t.some(function(n){try{n.__h.some(Z),n.__h=n.__h.filter(function(o){return!o.__||fe(o)})}catch(o){t.some(function(s){s.__h&&(s.__h=[])}),t=[],j.__e(o,n.__v)}}),qe&&qe(e,t)},j.unmount=function(e){We&&We(e);var t,n=e.__c;n&&n.__H&&(n.__H.__.some(function(o){try{Z(o)}catch(s){t=s}}),n.__H=void 0,t&&j.__e(t,n.__v))};var Be=typeof requestAnimationFrame=="function";function Ct(e){var t,n=function(){clearTimeout(o),Be&&cancelAnimationFrame(t),setTimeout(e)},o=setTimeout(n,35);Be&&(t=requestAnimationFrame(n))}function Z(e){var t=E,n=e.__c;typeof n=="function"&&(e.__c=void 0,n()),E=t}function fe(e){var t=E;e.__c=e.__(),E=t}function Et(e,t){return!e||e.length!==t.length||t.some(function(n,o){return n!==e[o]})}function Je(e,t){return typeof t=="function"?t(e):t}var he="alphaavatar.token",me="alphaavatar.csrf",$e=()=>sessionStorage.getItem(he);function ze(e={}){let t={...e},n=$e();n&&(t.Authorization=`Bearer ${n}`);let o=sessionStorage.getItem(me);return o&&(t["X-CSRF-Token"]=o),t}async function ve(e){let t=e?{Authorization:`Bearer ${e}`}:{},n=await fetch("/api/session",{headers:t});if(n.status===401)return null;if(!n.ok)throw new Error(`The console answered ${n.status}.`);let o=await n.json();return e&&sessionStorage.setItem(he,e),sessionStorage.setItem(me,o.csrf),o}function Ge(){sessionStorage.removeItem(he),sessionStorage.removeItem(me)}async function te(e,t){let n=await fetch(e,{method:"POST",headers:ze({"Content-Type":"application/json"}),body:JSON.stringify(t)});if(!n.ok){let o=`HTTP ${n.status}`;try{o=(await n.json()).error||o}catch{}throw new Error(o)}return n}async function g(e,t,n={}){let o=Object.fromEntries(Object.entries(n).filter(([,r])=>r!=null&&r!=="")),s=await(await te("/api/call",{server:e,tool:t,arguments:o})).json();if(!s.ok)throw new Error(s.text||`${t} failed`);return s.data}async function Qe(e){let t=await fetch(e,{headers:ze()});if(!t.ok)throw new Error(`HTTP ${t.status}`);return t.json()}async function Xe(e,t){let n=await te("/api/export",{format:e,user_id:t}),o=await n.blob(),s=(n.headers.get("Content-Disposition")||"").match(/filename="([^"]+)"/)?.[1]||"memories",r=document.createElement("a");return r.href=URL.createObjectURL(o),r.download=s,document.body.append(r),r.click(),r.remove(),setTimeout(()=>URL.revokeObjectURL(r.href),1e3),o.size}async function Ze(e,t,n){let o=(await te("/api/chat",{text:e,user_id:t})).body.pipeThrough(new TextDecoderStream).getReader(),s="";for(;;){let{value:r,done:i}=await o.read();s+=r||"";let c=s.split(`
`);s=i?"":c.pop();for(let _ of c.filter(l=>l.trim())){let l=JSON.parse(_);if(l.error)throw new Error(l.error);if("delta"in l)n(l.delta);else return l}if(i)throw new Error("The chat ended without a reply.")}}async function et(e,t){let n=await ne(e),o=await(await te("/api/corpus/upload",{name:e.name,data:n,user_id:t})).json();if(!o.ok)throw new Error(o.text);return o.data}function ne(e){return new Promise((t,n)=>{let o=new FileReader;o.onload=()=>t(String(o.result).split(",",2)[1]),o.onerror=()=>n(o.error),o.readAsDataURL(e)})}var nt=function(e,t,n,o){var s;t[0]=0;for(var r=1;r<t.length;r++){var i=t[r++],c=t[r]?(t[0]|=i?1:2,n[t[r++]]):t[++r];i===3?o[0]=c:i===4?o[1]=Object.assign(o[1]||{},c):i===5?(o[1]=o[1]||{})[t[++r]]=c:i===6?o[1][t[++r]]+=c+"":i?(s=e.apply(c,nt(e,c,n,["",null])),o.push(s),c[0]?t[0]|=2:(t[r-2]=0,t[r]=s)):o.push(c)}return o},tt=new Map;function ot(e){var t=tt.get(this);return t||(t=new Map,tt.set(this,t)),(t=nt(this,t.get(e)||(t.set(e,t=(function(n){for(var o,s,r=1,i="",c="",_=[0],l=function(a){r===1&&(a||(i=i.replace(/^\s*\n\s*|\s*\n\s*$/g,"")))?_.push(0,a,i):r===3&&(a||i)?(_.push(3,a,i),r=2):r===2&&i==="..."&&a?_.push(4,a,0):r===2&&i&&!a?_.push(5,0,!0,i):r>=5&&((i||!a&&r===5)&&(_.push(r,0,i,s),r=6),a&&(_.push(r,a,0,s),r=6)),i=""},u=0;u<n.length;u++){u&&(r===1&&l(),l(u));for(var d=0;d<n[u].length;d++)o=n[u][d],r===1?o==="<"?(l(),_=[_],r=3):i+=o:r===4?i==="--"&&o===">"?(r=1,i=""):i=o+i[0]:c?o===c?c="":i+=o:o==='"'||o==="'"?c=o:o===">"?(l(),r=1):r&&(o==="="?(r=5,s=i,i=""):o==="/"&&(r<5||n[u][d+1]===">")?(l(),r===3&&(_=_[0]),r=_,(_=_[0]).push(2,0,r),r=0):o===" "||o==="	"||o===`
`||o==="\r"?(l(),r=2):i+=o),r===3&&i==="!--"&&(r=4,_=_[0])}return l(),_})(e)),t),arguments,[])).length>1?t:t[0]}var f=ot.bind(ce);function T(){let[e,t]=$({busy:!1,error:null,note:null});return[e,async(o,s)=>{t({busy:!0,error:null,note:null});try{let r=await o();return t({busy:!1,error:null,note:s?s(r):null}),r}catch(r){t({busy:!1,error:r.message||String(r),note:null});return}}]}function I({state:e}){return f`<p class="notice ${e.error?"error":""}" role=${e.error?"alert":"status"} aria-live="polite">
    ${e.busy?"Working\u2026":e.error||e.note||""}</p>`}var N=e=>e?String(e).replace("T"," ").slice(0,19):"\u2014";function v({label:e,children:t,hint:n}){return f`<label class="field"><span>${e}</span>${t}${n?f`<small>${n}</small>`:null}</label>`}async function Pt(e,t){let n={};for(let i of["user","session","tool"])n[i]=(await g("memory","memory_list",{user_id:t,scope:i,limit:1})).total;let o=null;if(e.owner)try{o=await g("persona","user_get",{user_id:t})}catch{}else o=(await g("persona","user_list",{limit:1})).users.find(i=>i.user_id===t)||null;let s=[],r;do{let i=await g("research","corpus_list",{user_id:t,limit:100,cursor:r});s.push(...i.documents.filter(c=>c.user_id===t)),r=i.next_cursor}while(r);return{memories:n,person:o,docs:s}}function rt({session:e,user:t,onDone:n}){let[o,s]=$(null),[r,i]=T(),c=()=>i(async()=>s(await Pt(e,t))),_=()=>i(async()=>{let u=[],d=await g("memory","memory_forget_user",{user_id:t});if(u.push(`${d.memories_deleted} memories, ${d.history_events_deleted} history events, ${d.exports_deleted} exports`),o.person){let h=await g("persona","user_forget",{user_id:t});u.push(`${h.voice_samples} voice and ${h.face_samples} face samples, ${h.history_entries} profile history entries`)}let a=await g("research","research_forget_user",{user_id:t});return u.push(`${a.documents_deleted} corpus documents, ${a.jobs_deleted} research jobs`),s(null),n(),u},u=>`Erased ${u.join("; ")}.`),l=o?Object.values(o.memories).reduce((u,d)=>u+d,0):0;return f`<div class="forget">
    <button class="danger" id="forget" onClick=${c}>Forget me…</button>
    ${o?f`<div class="confirm" role="alertdialog" aria-labelledby="forget-h" aria-describedby="forget-list">
      <h3 id="forget-h">Erase everything about user “${t}”? This cannot be undone.</h3>
      <ul id="forget-list">
        <li>Memory: ${l} memories (${o.memories.user} user, ${o.memories.session} session, ${o.memories.tool} tool-call), their history, their exports, and the memory server's activity record of this user.</li>
        <li>Persona: ${o.person?`${Object.values(o.person.voice_samples).reduce((u,d)=>u+d,0)} voice samples, ${o.person.face_samples} face samples, ${o.person.facts} profile facts with their history, and the persona server's activity record.`:"nothing (no persona record for this user)."}</li>
        <li>Knowledge: ${o.docs.length} corpus document(s) added for this user${o.docs.length?": "+o.docs.map(u=>u.title).join(", "):""}, the research jobs this user started or that read them, and the research server's activity record of this user.</li>
        <li>Kept: memories shared by the avatar (scope avatar) and the shared corpus.</li>
      </ul>
      <button class="danger" id="forget-confirm" onClick=${_}>Erase all of this</button>
      <button id="forget-cancel" onClick=${()=>s(null)}>Cancel</button>
    </div>`:null}
    <${I} state=${r} />
  </div>`}var st=["user","session","tool","avatar"],at=50,it=e=>e?new Date(e).toISOString():void 0;function jt({m:e,user:t,onChanged:n}){let[o,s]=$(!1),[r,i]=$(e.content),[c,_]=$(null),[l,u]=T(),d=m=>{m.preventDefault(),u(async()=>{await g("memory","memory_update",{memory_id:e.id,content:r}),s(!1),n()})},a=()=>{confirm(`Delete this memory?

\u201C${e.content.slice(0,200)}\u201D`)&&u(async()=>{await g("memory","memory_delete",{memory_id:e.id}),n()})},h=()=>u(async()=>_(c?null:(await g("memory","memory_history",{memory_id:e.id})).events));return f`<li class="card memory" data-id=${e.id}>
    ${o?f`<form onSubmit=${d} class="edit"><${v} label="Memory text">
          <textarea rows="3" value=${r} onInput=${m=>i(m.target.value)} required /></${v}>
          <button type="submit">Save</button> <button type="button" onClick=${()=>s(!1)}>Cancel</button></form>`:f`<p class="content">${e.content}</p>`}
    <p class="meta">
      <span class="tag">${e.scope}</span>
      ${e.session_id?f`<span>session ${e.session_id}</span>`:null}
      <span>occurred ${N(e.occurred_at)}</span> <span>updated ${N(e.updated_at)}</span>
      ${e.score!=null?f`<span>score ${e.score.toFixed(3)}</span>`:null}
    </p>
    <div class="actions">
      <button onClick=${()=>s(!0)} aria-label=${`Edit memory ${e.id}`}>Edit</button>
      <button onClick=${h} aria-expanded=${c?"true":"false"}>History</button>
      <button class="danger" onClick=${a} aria-label=${`Delete memory ${e.id}`}>Delete</button>
    </div>
    ${c?f`<ol class="history">${c.map(m=>f`<li><strong>${m.event}</strong> ${N(m.at)}
      ${m.old?f` — was “${m.old}”`:null}${m.new?f` → “${m.new}”`:null}</li>`)}</ol>`:null}
    <${I} state=${l} />
  </li>`}function lt({session:e,user:t}){let[n,o]=$({query:"",scope:"",session_id:"",since:"",until:""}),[s,r]=$([]),[i,c]=$(null),[_,l]=$(null),[u,d]=T(),[a,h]=$({content:"",scope:"user"}),m=w=>A=>o({...n,[w]:A.target.value}),k=()=>({user_id:t,scope:n.scope,session_id:n.session_id,since:it(n.since),until:it(n.until)}),b=w=>d(async()=>{let A=n.query.trim()?await g("memory","memory_search",{...k(),query:n.query,limit:at,cursor:w}):await g("memory","memory_list",{...k(),limit:at,cursor:w});r(w?[...s,...A.results]:A.results),c(A.next_cursor),l(A.total??null)});D(()=>{b(null)},[t]);let S=w=>{w.preventDefault(),b(null)},y=w=>{w.preventDefault(),d(async()=>{let A=await g("memory","memory_add",{content:a.content,scope:a.scope,user_id:t,infer:!1});return h({...a,content:""}),await b(null),A},A=>A&&`Stored: ${A.results.map(U=>U.event).join(", ")}`)},P=w=>d(()=>Xe(w,t),A=>`Downloaded ${A.toLocaleString()} bytes.`);return f`<section aria-labelledby="find-h">
    <h2 id="find-h">Find</h2>
    <form class="filters" onSubmit=${S} role="search">
      <${v} label="Search (hybrid: meaning and words)"><input id="q" type="search" value=${n.query} onInput=${m("query")} /></${v}>
      <${v} label="Scope"><select id="scope" value=${n.scope} onChange=${m("scope")}>
        <option value="">user, session and avatar</option>${st.map(w=>f`<option value=${w}>${w}</option>`)}</select></${v}>
      <${v} label="Session id"><input id="session" value=${n.session_id} onInput=${m("session_id")} /></${v}>
      <${v} label="Since" hint="when it occurred"><input id="since" type="datetime-local" value=${n.since} onInput=${m("since")} /></${v}>
      <${v} label="Until"><input id="until" type="datetime-local" value=${n.until} onInput=${m("until")} /></${v}>
      <button type="submit" id="search">${n.query.trim()?"Search":"List"}</button>
    </form>
  </section>
  <section aria-labelledby="add-h">
    <h2 id="add-h">Remember something</h2>
    <form class="add" onSubmit=${y}>
      <${v} label="New memory"><textarea id="new-memory" rows="2" required value=${a.content}
        onInput=${w=>h({...a,content:w.target.value})} /></${v}>
      <${v} label="Scope of the new memory"><select id="new-scope" value=${a.scope} onChange=${w=>h({...a,scope:w.target.value})}>
        ${st.map(w=>f`<option value=${w}>${w}</option>`)}</select></${v}>
      <button type="submit" id="add">Add</button>
    </form>
  </section>
  <${I} state=${u} />
  <section aria-labelledby="list-h">
    <h2 id="list-h">${_!=null?`${_.toLocaleString()} memories`:`${s.length} results`}</h2>
    <ul class="cards" id="memories">${s.map(w=>f`<${jt} key=${w.id} m=${w} user=${t} onChanged=${()=>b(null)} />`)}</ul>
    ${i?f`<button id="more" onClick=${()=>b(i)}>More</button>`:null}
  </section>
  <section aria-labelledby="export-h">
    <h2 id="export-h">Export and erase</h2>
    <button id="export-json" onClick=${()=>P("json")}>Download JSON</button>
    <button id="export-md" onClick=${()=>P("markdown")}>Download Markdown</button>
    <${rt} session=${e} user=${t} onDone=${()=>b(null)} />
  </section>`}function It(e,t){let n=new ArrayBuffer(44+e.length*2),o=new DataView(n),s=(r,i)=>[...i].forEach((c,_)=>o.setUint8(r+_,c.charCodeAt(0)));return s(0,"RIFF"),o.setUint32(4,36+e.length*2,!0),s(8,"WAVE"),s(12,"fmt "),o.setUint32(16,16,!0),o.setUint16(20,1,!0),o.setUint16(22,1,!0),o.setUint32(24,t,!0),o.setUint32(28,t*2,!0),o.setUint16(32,2,!0),o.setUint16(34,16,!0),s(36,"data"),o.setUint32(40,e.length*2,!0),e.forEach((r,i)=>o.setInt16(44+i*2,Math.max(-1,Math.min(1,r))*32767,!0)),new Blob([n],{type:"audio/wav"})}async function ct(e){let t=await navigator.mediaDevices.getUserMedia({audio:{echoCancellation:!1,noiseSuppression:!1}}),n=new AudioContext,o=n.createMediaStreamSource(t),s=n.createScriptProcessor(4096,1,1),r=[];s.onaudioprocess=l=>r.push(new Float32Array(l.inputBuffer.getChannelData(0))),o.connect(s),s.connect(n.destination),await new Promise(l=>setTimeout(l,e*1e3)),s.disconnect(),o.disconnect(),t.getTracks().forEach(l=>l.stop());let i=n.sampleRate;await n.close();let c=new Float32Array(r.reduce((l,u)=>l+u.length,0)),_=0;for(let l of r)c.set(l,_),_+=l.length;return It(c,i)}async function ut(){let e=await navigator.mediaDevices.getUserMedia({video:!0});try{let t=document.createElement("video");t.srcObject=e,t.muted=!0,await t.play();let n=document.createElement("canvas");return n.width=t.videoWidth,n.height=t.videoHeight,n.getContext("2d").drawImage(t,0,0),await new Promise(o=>n.toBlob(o,"image/jpeg",.92))}finally{e.getTracks().forEach(t=>t.stop())}}var ge=e=>Object.values(e.voice_samples||{}).reduce((t,n)=>t+n,0);function Tt(e){let t=[],n=(o,s)=>Array.isArray(s)?s.forEach(r=>n(o,r)):s&&s.value!==void 0&&t.push([o,s]);for(let[o,s]of Object.entries(e.identity||{}))n(`identity.${o}`,s);for(let o of["preferences","relationships","goals","routines","important_dates","communication_style","accessibility_notes"])n(o,e[o]);for(let[o,s]of Object.entries(e.custom||{}))n(`custom.${o}`,s);return t}var ye=e=>typeof e=="object"?Object.values(e).join(" \u2014 "):String(e);function Dt({id:e,session:t,onGone:n,onChanged:o}){let[s,r]=$(null),[i,c]=$(null),[_,l]=$(null),[u,d]=$(""),[a,h]=$(""),[m,k]=$({field:"preferences",value:""}),[b,S]=T(),y=()=>S(async()=>{let p=await g("persona","user_get",{user_id:e});r(p),d(p.name),c(await g("persona","profile_get",{user_id:e}))});if(D(()=>{l(null),y()},[e]),!s)return f`<${I} state=${b} />`;let P=(p,x)=>S(async()=>{let L=await p();return await y(),o(),L},x),w=p=>P(async()=>{let x=await ne(await ct(p));return g("persona","speaker_enroll",{user_id:e,audio:x})},x=>`Voice enrolled: voiceprint now ${JSON.stringify(x.voice_samples)}.`),A=p=>P(async()=>g("persona","face_enroll",{user_id:e,image:await ne(p)}),x=>`Face enrolled: ${x.face_samples} in all.`),U=["preferences","identity.languages","goals","routines","accessibility_notes"].includes(m.field);return f`<article class="card person" aria-labelledby="person-h" data-user=${e}>
    <h2 id="person-h">${s.name} ${s.provisional?f`<span class="tag">provisional</span>`:null}</h2>
    <p class="meta">id <code>${s.user_id}</code> · voice samples <span id="voice-count">${ge(s)}</span>
      · faces <span id="face-count">${s.face_samples}</span> · facts ${s.facts} · created ${N(s.created_at)}</p>
    <h3>Profile</h3>
    <table class="profile"><thead><tr><th scope="col">Field</th><th scope="col">Value</th><th scope="col">Source</th>
      <th scope="col">Confidence</th><th scope="col">First seen</th><th scope="col">Last seen</th></tr></thead>
      <tbody>${Tt(i).map(([p,x])=>f`<tr><td>${p}</td><td>${ye(x.value)}</td><td>${x.source}${x.source_ref?` (${x.source_ref})`:""}</td>
        <td>${x.confidence}</td><td>${N(x.first_seen)}</td><td>${N(x.last_seen)}</td></tr>`)}</tbody></table>
    <form class="inline" onSubmit=${p=>{p.preventDefault(),P(()=>g("persona","profile_update",{user_id:e,patches:[{op:U?"add":"set",field:m.field,value:m.value}]}),()=>"Profile updated.")}}>
      <${v} label="Field"><input id="patch-field" value=${m.field} onInput=${p=>k({...m,field:p.target.value})} /></${v}>
      <${v} label="Value"><input id="patch-value" required value=${m.value} onInput=${p=>k({...m,value:p.target.value})} /></${v}>
      <button type="submit">${U?"Add value":"Set value"}</button>
    </form>
    <button onClick=${()=>S(async()=>l(_?null:(await g("persona","profile_history",{user_id:e,limit:100})).changes))}
      aria-expanded=${_?"true":"false"}>Profile history</button>
    ${_?f`<ol class="history">${_.map(p=>f`<li>${N(p.at)} <strong>${p.op}</strong> ${p.field}:
      ${p.old!=null?ye(p.old):"\u2014"} → ${p.new!=null?ye(p.new):"\u2014"} [${p.source}]</li>`)}</ol>`:null}
    <h3>Enroll</h3>
    <div class="actions">
      <button id="record-voice" onClick=${()=>w(3)}>Record 3 s of voice and enroll</button>
      <button id="camera-face" onClick=${()=>S(ut).then(p=>p&&A(p))}>Take a photo and enroll</button>
      <${v} label="Or a photo file"><input id="face-file" type="file" accept="image/jpeg,image/png,image/webp"
        onChange=${p=>p.target.files[0]&&A(p.target.files[0])} /></${v}>
    </div>
    <h3>Change</h3>
    <form class="inline" onSubmit=${p=>{p.preventDefault(),P(()=>g("persona","user_rename",{user_id:e,name:u}),()=>"Renamed.")}}>
      <${v} label="Name"><input id="rename" required value=${u} onInput=${p=>d(p.target.value)} /></${v}>
      <button type="submit">Rename</button>
    </form>
    ${t.owner?f`<form class="inline" onSubmit=${p=>{p.preventDefault(),confirm(`Merge ${s.name} into ${a}? ${s.name} ceases to exist.`)&&S(async()=>{await g("persona","user_merge",{user_id:e,into_user_id:a}),n()})}}>
      <${v} label="Merge into user id"><input id="merge-into" required value=${a} onInput=${p=>h(p.target.value)} /></${v}>
      <button type="submit">Merge</button></form>`:null}
    <button class="danger" id="person-forget" onClick=${()=>{confirm(`Erase ${s.name}: ${ge(s)} voice samples, ${s.face_samples} face samples, ${s.facts} profile facts and their history? This cannot be undone.`)&&S(async()=>{await g("persona","user_forget",{user_id:e}),n()})}}>Forget this person</button>
    <${I} state=${b} />
  </article>`}function _t({session:e,user:t}){let[n,o]=$([]),[s,r]=$(null),[i,c]=$(null),[_,l]=$(""),[u,d]=T(),a=m=>d(async()=>{let k=await g("persona","user_list",{limit:50,cursor:m});o(m?[...n,...k.users]:k.users),r(k.next_cursor),!e.owner&&k.users.some(b=>b.user_id===t)&&c(t)});D(()=>{a(null)},[]);let h=m=>{m.preventDefault(),d(async()=>{let k=await g("persona","user_create",{name:_});l(""),await a(null),c(k.user_id)})};return f`<div class="split">
    <section aria-labelledby="users-h">
      <h2 id="users-h">Users</h2>
      <ul class="users" id="users">${n.map(m=>f`<li>
        <button class="row" aria-pressed=${i===m.user_id?"true":"false"} onClick=${()=>c(m.user_id)}>
          <strong>${m.name}</strong>${m.provisional?" (provisional)":""}<br />
          <small>voice ${ge(m)} · faces ${m.face_samples} · facts ${m.facts}</small></button></li>`)}</ul>
      ${s?f`<button onClick=${()=>a(s)}>More</button>`:null}
      <form class="inline" onSubmit=${h}>
        <${v} label=${e.owner?"New user's name":"Your name (creates your profile)"}>
          <input id="new-user" required value=${_} onInput=${m=>l(m.target.value)} /></${v}>
        <button type="submit" id="create-user">Create</button>
      </form>
      <${I} state=${u} />
    </section>
    ${i?f`<${Dt} id=${i} session=${e} onChanged=${()=>a(null)}
      onGone=${()=>{c(null),a(null)}} />`:f`<p id="no-person">${e.owner?"Pick a user.":"You have no profile here yet: create it with your name."}</p>`}
  </div>`}function dt({session:e,user:t}){let n=e.owner?{}:{user_id:t},[o,s]=$([]),[r,i]=$(null),[c,_]=$(0),[l,u]=$(""),[d,a]=$(""),[h,m]=$(null),[k,b]=T(),S=p=>b(async()=>{let x=await g("research","corpus_list",{...n,limit:50,cursor:p});s(p?[...o,...x.documents]:x.documents),i(x.next_cursor),_(x.total)});D(()=>{S(null)},[t]);let y=p=>`${p.duplicate?"Already there":"Added"}: \u201C${p.document.title}\u201D (${p.document.chunks} passages).`,P=p=>{let x=p.target.files[0];x&&b(async()=>{let L=await et(x,n.user_id);return p.target.value="",await S(null),L},y)},w=p=>{p.preventDefault(),b(async()=>{let x=await g("research","corpus_add",{...n,url:l});return u(""),await S(null),x},y)},A=p=>{p.preventDefault(),b(async()=>m((await g("research","corpus_search",{...n,query:d,limit:10})).results))},U=p=>confirm(`Delete \u201C${p.title}\u201D and its ${p.chunks} passages?`)&&b(async()=>{await g("research","corpus_delete",{...n,doc_id:p.doc_id}),await S(null)});return f`<section aria-labelledby="kadd-h"><h2 id="kadd-h">Add</h2>
      <${v} label="A file (.pdf, .txt, .md, .html)"><input id="doc-file" type="file" accept=".pdf,.txt,.md,.html,.htm" onChange=${P} disabled=${k.busy} /></${v}>
      <form class="inline" onSubmit=${w}>
        <${v} label="A public web page"><input id="doc-url" type="url" required value=${l} onInput=${p=>u(p.target.value)} /></${v}>
        <button type="submit">Fetch and add</button></form>
      ${k.busy?f`<progress aria-label="Adding the document"></progress>`:null}
    </section>
    <${I} state=${k} />
    <section aria-labelledby="ksearch-h"><h2 id="ksearch-h">Search</h2>
      <form class="inline" role="search" onSubmit=${A}>
        <${v} label="Search the corpus"><input id="corpus-q" type="search" required value=${d} onInput=${p=>a(p.target.value)} /></${v}>
        <button type="submit" id="corpus-search">Search</button></form>
      ${h?f`<ol class="cards" id="hits">${h.map(p=>f`<li class="card"><strong>${p.title}</strong>
        <small> score ${p.score.toFixed(3)}</small><p>${p.text}</p></li>`)}</ol>`:null}
    </section>
    <section aria-labelledby="kdocs-h"><h2 id="kdocs-h">${c} documents</h2>
      <table id="docs"><thead><tr><th scope="col">Title</th><th scope="col">Source</th><th scope="col">Passages</th>
        <th scope="col">Added</th><th scope="col">Owner</th><th scope="col"><span class="sr">Actions</span></th></tr></thead>
        <tbody>${o.map(p=>f`<tr><td>${p.title}</td><td>${p.source_type}</td><td>${p.chunks}</td>
          <td>${N(new Date(p.added_at*1e3).toISOString())}</td><td>${p.user_id||"shared"}</td>
          <td><button class="danger" onClick=${()=>U(p)} aria-label=${`Delete ${p.title}`}>Delete</button></td></tr>`)}</tbody></table>
      ${r?f`<button onClick=${()=>S(r)}>More</button>`:null}
    </section>`}var Nt=["memory","persona","research"];function pt({session:e,user:t}){let[n,o]=$([]),[s,r]=$(!1),[i,c]=$(!1),[_,l]=T(),u=()=>l(async()=>{let d=e.owner&&s?{}:{user_id:t},a=await Promise.all(Nt.map(h=>g(h,`${h}_audit_list`,{...d,limit:100}).then(m=>m.entries.map(k=>({...k,server:h})))));o(a.flat().sort((h,m)=>h.at<m.at?1:h.at>m.at?-1:0))});return D(()=>{u()},[t,s]),f`<p>Every tool call, resource read and prompt that concerned ${e.owner&&s?"any user":f`user <strong>${t}</strong>`},
      newest first (the 100 latest per server), with the MCP client that made it. This console is <code>alphaavatar-console</code>.</p>
    <div class="actions">
    ${e.owner?f`<label><input type="checkbox" id="all-users" checked=${s} onChange=${d=>r(d.target.checked)} /> every user</label>`:null}
    <label><input type="checkbox" id="show-console" checked=${i} onChange=${d=>c(d.target.checked)} /> include this console's own accesses</label>
    <button id="refresh" onClick=${u}>Refresh</button></div>
    <${I} state=${_} />
    <div class="scroll"><table id="audit"><thead><tr><th scope="col">When (UTC)</th><th scope="col">Server</th><th scope="col">Client</th>
      <th scope="col">Principal</th><th scope="col">Access</th><th scope="col">Result</th><th scope="col">Users</th><th scope="col">Ids</th></tr></thead>
      <tbody>${n.filter(d=>i||d.client!=="alphaavatar-console").map(d=>f`<tr class=${d.ok?"":"failed"}><td>${N(d.at)}</td><td>${d.server}</td><td>${d.client}</td>
        <td>${d.principal}</td><td>${d.kind} <code>${d.name}</code></td><td>${d.ok?"ok":"refused or failed"}</td>
        <td>${d.user_ids.join(", ")}</td><td class="ids" title=${d.ids.join(" ")}>${d.ids.length?`${d.ids.length}: ${d.ids.slice(0,2).map(a=>a.slice(0,8)).join(", ")}${d.ids.length>2?"\u2026":""}`:""}</td></tr>`)}</tbody></table></div>`}var Ut=e=>typeof e=="object"&&e!==null?JSON.stringify(e):String(e);function ft(){let[e,t]=$(null),[n,o]=$(null),[s,r]=T(),i=async()=>t(await(await fetch("/healthz")).json());return D(()=>{r(async()=>{await i(),o(await Qe("/api/status"))});let c=setInterval(()=>i().catch(()=>{}),5e3);return()=>clearInterval(c)},[]),f`<${I} state=${s} />
    ${e?f`<h2>Servers: <span id="health">${e.status}</span></h2>
      <table id="servers"><thead><tr><th scope="col">Server</th><th scope="col">Part</th><th scope="col">State</th></tr></thead>
      <tbody>${Object.entries(e.servers).flatMap(([c,_])=>Object.entries(_).map(([l,u])=>f`<tr><td>${c}</td><td>${l}</td><td>${Ut(u)}</td></tr>`))}</tbody></table>`:null}
    ${n?f`<h2>Configuration</h2><dl class="conf">
      <dt>LLM</dt><dd>${n.llm||"none \u2014 set ALPHAAVATAR_LLM_MODEL and OPENAI_BASE_URL / OPENAI_API_KEY for fact extraction, profile_extract and research answers"}</dd>
      <dt>Tavily</dt><dd>${n.tavily?"TAVILY_API_KEY set":"none \u2014 web search off (the local corpus still works): set TAVILY_API_KEY"}</dd>
      <dt>Vector store</dt><dd>${n.store}</dd>
      <dt>Tokens</dt><dd>owner ${n.tokens.owner?"set":"none"}, ${n.tokens.users} user token(s)</dd>
      ${n.store_bytes!=null?f`<dt>Data</dt><dd>${(n.store_bytes/1e6).toFixed(1)} MB in ${n.home}</dd>`:null}
    </dl>`:null}`}var oe=e=>Array.isArray(e)?e.map(oe).join(", "):typeof e=="object"&&e!==null?"value"in e?oe(e.value):Object.entries(e).map(([t,n])=>`${t}: ${oe(n)}`).join("; "):String(e);function Mt({turn:e}){let t=Object.entries(e.profile||{}).filter(([n])=>!["user_id","provisional"].includes(n));return f`<details class="why"><summary>Why it said that</summary>
    <p>In its context for user <code>${e.user_id}</code>:</p>
    <h4>Memories (${e.memories.length})</h4>
    <ul class="why-memories">${e.memories.map(n=>f`<li>${n.content} <small>${N(n.occurred_at)}${n.score!=null?` \xB7 ${n.score.toFixed(3)}`:""}</small></li>`)}</ul>
    <h4>Profile</h4>
    ${t.length?f`<ul>${t.map(([n,o])=>f`<li><strong>${n}</strong>: ${oe(o)}</li>`)}</ul>`:f`<p>none</p>`}
    ${e.late.length||e.failed.length?f`<p class="notice">Not in time: ${[...e.late,...e.failed].join(", ")}</p>`:null}
  </details>`}function ht({session:e,user:t}){let[n,o]=$([]),[s,r]=$(""),[i,c]=T(),_=e.owner?f`<iframe class="viewer" id="viewer" src="/character/" title="The avatar's character"></iframe>`:f`<p id="viewer-owners">The character is the avatar's shared stage, seen by everyone it talks to, so watching it
        takes the owner's token; a user token's chat goes on without it.</p>`,l=u=>{u.preventDefault();let d=s.trim();if(!d)return;r("");let a=n;c(async()=>{let h="";try{let m=await Ze(d,t,k=>{h+=k,o([...a,{said:d,reply:h,streaming:!0}])});o([...a,{said:d,...m}])}catch(m){throw o(a),m}})};return e.llm?f`<div class="split">${_}<section aria-labelledby="chat-h"><h2 id="chat-h">Chat as ${t}</h2>
    <ol class="chat" id="chat" aria-live="polite">${n.map(u=>f`<li>
      <p class="said"><strong>You:</strong> ${u.said}</p><p class="reply" aria-busy=${u.streaming?"true":"false"}><strong>Alpha:</strong> <span class="reply-text">${u.reply}</span></p>
      ${u.streaming?null:f`<${Mt} turn=${u} />`}</li>`)}</ol>
    <form class="inline" onSubmit=${l}>
      <${v} label="Say something"><input id="chat-text" value=${s} onInput=${u=>r(u.target.value)} required maxlength="4000" /></${v}>
      <button type="submit" id="chat-send" disabled=${i.busy}>Send</button>
    </form>
    <${I} state=${i} />
  </section></div>`:f`<div class="split">${_}<section aria-labelledby="chat-h"><h2 id="chat-h">Chat</h2>
      <p id="chat-missing">Chat with the agent needs an LLM. Set <code>ALPHAAVATAR_LLM_MODEL</code> (e.g. gpt-4o-mini)
        and <code>OPENAI_BASE_URL</code> and/or <code>OPENAI_API_KEY</code> for an OpenAI-compatible endpoint, then restart
        <code>alphaavatar up</code>.</p></section></div>`}var be=[["memories","Memories",lt],["people","People",_t],["knowledge","Knowledge",dt],["activity","Activity",pt],["status","Status",ft],["avatar","Avatar",ht]],mt=()=>location.hash.replace(/^#\/?/,"")||"memories";function Ft({onIn:e}){let[t,n]=$(""),[o,s]=T();return f`<main class="signin" id="main">
    <h1>AlphaAvatar console</h1>
    <p>Sign in with your token: the owner's token sees every user, a user's token only that user.</p>
    <form onSubmit=${i=>{i.preventDefault(),s(async()=>{let c=await ve(t.trim());if(!c)throw new Error("This token is not accepted. Use ALPHAAVATAR_TOKEN (owner) or one of ALPHAAVATAR_USER_TOKENS.");e(c)})}} aria-label="Sign in">
      <${v} label="Token"><input id="token" type="password" autocomplete="current-password" required
        value=${t} onInput=${i=>n(i.target.value)} /></${v}>
      <button type="submit" id="signin" disabled=${o.busy}>Sign in</button>
    </form>
    <${I} state=${o} />
  </main>`}function Ot({session:e,subject:t,setSubject:n}){let[o,s]=$([]);return D(()=>{e.owner&&g("persona","user_list",{limit:100}).then(r=>s(r.users)).catch(()=>{})},[e]),e.owner?f`<div class="subject">
    <label for="subject">Owner — showing user</label>
    <input id="subject" list="subject-users" value=${t} onChange=${r=>n(r.target.value.trim()||"default")} />
    <datalist id="subject-users">
      <option value="default" />
      ${o.map(r=>f`<option value=${r.user_id}>${r.name}</option>`)}
    </datalist>
  </div>`:f`<p class="subject">Signed in as user <strong id="whoami">${e.user_id}</strong></p>`}function Lt(){let[e,t]=$(void 0),[n,o]=$(mt()),[s,r]=$(sessionStorage.getItem("alphaavatar.subject")||"default"),i=u=>{sessionStorage.setItem("alphaavatar.subject",u),r(u)};if(D(()=>{document.getElementById("main")?.focus({preventScroll:!0})},[n]),D(()=>{let u=()=>o(mt());return addEventListener("hashchange",u),ve($e()).then(d=>t(d||null),()=>t(null)),()=>removeEventListener("hashchange",u)},[]),e===void 0)return f`<p class="loading" role="status">Loading…</p>`;if(e===null)return f`<${Ft} onIn=${t} />`;let c=e.owner?s:e.user_id,[,_,l]=be.find(([u])=>u===n)||be[0];return f`<div class="shell">
    <a class="skip" href="#main">Skip to content</a>
    <header>
      <span class="brand">AlphaAvatar</span>
      <nav aria-label="Pages"><ul>
        ${be.map(([u,d])=>f`<li><a href=${`#/${u}`} id=${`nav-${u}`}
          aria-current=${u===n?"page":void 0}>${d}</a></li>`)}
      </ul></nav>
      <${Ot} session=${e} subject=${s} setSubject=${i} />
      <button class="link" id="signout" onClick=${()=>{Ge(),t(null)}}>Sign out</button>
    </header>
    <main id="main" tabindex="-1" data-page=${n}>
      <h1>${_}</h1>
      <${l} session=${e} user=${c} />
    </main>
  </div>`}Fe(f`<${Lt} />`,document.getElementById("app"));
