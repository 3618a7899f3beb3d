import { render } from 'preact';
import { Popup } from './Popup';
import '../../components/style.css';

const root = document.getElementById('app');
if (root) render(<Popup />, root);
